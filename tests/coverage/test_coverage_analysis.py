"""The coverage analysis end to end on small inline datasets (hashing embedder, fixed clusters)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataaudit.coverage import CoverageAnalysis, CoverageResult
from dataaudit.coverage.results import CLUSTER_COVERAGE_SCHEMA, COVERAGE_SCHEMA, GAPS_SCHEMA
from tests.conftest import make_context, make_dataset

CITIES = ["paris", "london", "tokyo", "berlin", "madrid", "rome", "oslo", "vienna"]
DAYS = ["today", "tomorrow", "on monday", "this weekend"]
FOODS = ["chicken", "salmon", "potatoes", "rice", "tofu", "lamb", "beef", "pasta"]
INGREDIENTS = ["garlic", "lemon", "butter", "herbs"]

WEATHER = [f"what is the weather like in {c} {d}" for c in CITIES for d in DAYS]  # 32
RECIPES = [f"give me a recipe for {f} with {i}" for f in FOODS for i in INGREDIENTS]  # 32
SUMS = [f"what is {a} plus {b}" for a in range(3, 11) for b in range(11, 15)]  # 32
TRANSLATIONS = [f"translate '{p}' into {l}" for p in ["good morning", "thank you very much", "where is the station"] for l in ["french", "german", "spanish", "italian"]]


def split(texts: list[str], training_share: float = 0.75, seed: int = 0) -> tuple[list[str], list[str]]:
    """A random split: held-back rows are drawn exactly like training, so they are covered."""
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = round(training_share * len(texts))
    return [texts[i] for i in sorted(order[:cut])], [texts[i] for i in sorted(order[cut:])]


# Training: weather (cluster 0), recipes (1), sums (2); covered production: the held-back rows.
FAMILIES = [split(WEATHER), split(RECIPES), split(SUMS)]
TRAIN = [text for family, _ in FAMILIES for text in family]
TRAIN_CLUSTERS = [cluster for cluster, (family, _) in enumerate(FAMILIES) for _ in family]
COVERED = [text for _, held_back in FAMILIES for text in held_back]


def analyse(production: list[str], train: list[str] = TRAIN, clusters: list[int] | None = TRAIN_CLUSTERS, **params) -> CoverageResult:
    ctx = make_context(make_dataset(train), cluster_labels=clusters)
    return CoverageAnalysis(**params).run(ctx, make_dataset(production))


@pytest.fixture(scope="module")
def with_translations() -> CoverageResult:
    return analyse(COVERED + TRANSLATIONS)


def test_frames_have_the_documented_schema(with_translations):
    assert dict(with_translations.coverage.schema) == COVERAGE_SCHEMA
    assert dict(with_translations.gaps.schema) == GAPS_SCHEMA
    assert dict(with_translations.cluster_coverage.schema) == CLUSTER_COVERAGE_SCHEMA
    json.dumps(with_translations.summary)  # JSON-safe


def test_a_family_absent_from_training_is_gaps_and_covered_rows_are_not(with_translations):
    coverage = with_translations.coverage
    is_translation = coverage.get_column("prompt").is_in(TRANSLATIONS)
    translated = coverage.filter(is_translation)
    assert translated.get_column("is_gap").all()
    assert translated.get_column("gap_cluster").null_count() == 0
    covered = coverage.filter(~is_translation)
    assert not covered.get_column("is_gap").any()
    assert covered.get_column("gap_cluster").null_count() == covered.height
    assert translated.get_column("gap_score").max() < covered.get_column("gap_score").min()
    scores = coverage.get_column("gap_score")
    assert scores.min() >= 0 and scores.max() <= 1
    assert coverage.get_column("row").to_list() == list(range(len(COVERED + TRANSLATIONS)))


def test_gap_clusters_are_named_by_their_keywords_and_say_what_to_collect(with_translations):
    gaps = with_translations.gaps
    assert gaps.height >= 1
    assert gaps.get_column("size").sum() == len(TRANSLATIONS)
    assert gaps.get_column("size").to_list() == sorted(gaps.get_column("size").to_list(), reverse=True)
    for record in gaps.iter_rows(named=True):
        assert "translate" in record["keywords"]
        assert record["label"] == " / ".join(record["keywords"][:3])
        assert 1 <= len(record["representatives"]) <= 5 and set(record["representatives"]) <= set(TRANSLATIONS)
        assert record["collect"] >= 10
        assert record["nearest_training_cluster"] in {0, 1, 2}
        assert record["share_of_production"] == pytest.approx(record["size"] / len(COVERED + TRANSLATIONS), abs=1e-4)


def test_summary_reports_gaps_drift_and_the_evaluation_gap(with_translations):
    summary = with_translations.summary
    assert summary["production_rows"] == len(COVERED + TRANSLATIONS)
    assert summary["gap_rows"] == len(TRANSLATIONS)
    assert summary["gap_clusters"] == with_translations.gaps.height
    assert summary["threshold"]["method"] == "calibrated on held-out training" and summary["threshold"]["alpha"] == 0.05
    assert summary["drift"]["auc"] is not None and "interpretation" in summary["drift"]
    evaluation = summary["evaluation_gap"]
    assert evaluation["held_out"]["rows"] == summary["threshold"]["calibration_rows"] == len(TRAIN)  # cross-conformal
    assert evaluation["production"]["gap_share"] > evaluation["held_out"]["gap_share"]
    assert evaluation["production"]["mean_gap_score"] < evaluation["held_out"]["mean_gap_score"]
    assert summary["not_computed"] == {}


def test_cluster_coverage_flags_under_covered_and_unused_clusters():
    (weather, held_back_weather), (_, held_back_recipes), _ = FAMILIES
    production = held_back_weather + weather[:12] + held_back_recipes[:4]  # weather-heavy, few recipes, no sums
    result = analyse(production)
    status = dict(result.cluster_coverage.select("cluster", "status").iter_rows())
    assert status == {0: "under_covered", 1: "ok", 2: "unused"}
    frame = result.cluster_coverage
    assert frame.get_column("train_share").sum() == pytest.approx(1.0)
    weather = frame.row(0, named=True)
    assert weather["density_ratio"] == pytest.approx(weather["production_share"] / weather["train_share"], rel=1e-3)
    assert result.summary["under_covered_clusters"] == [0] and result.summary["unused_clusters"] == [2]


def test_production_like_training_shows_no_drift_and_few_gaps():
    rng = np.random.default_rng(0)
    pool = WEATHER + RECIPES + SUMS
    order = rng.permutation(len(pool))
    train = [pool[i] for i in order[:64]]
    production = [pool[i] for i in order[64:]]
    result = analyse(production, train=train, clusters=None)
    assert result.summary["drift"]["auc"] < 0.7
    assert result.summary["gap_share"] <= 0.15


def test_production_identical_to_training_has_no_gaps():
    result = analyse(TRAIN)
    assert not result.coverage.get_column("is_gap").any()
    assert result.gaps.height == 0
    assert result.coverage.get_column("similarity").min() == pytest.approx(1.0, abs=1e-5)
    assert result.summary["drift"]["auc"] < 0.6


def test_production_with_no_overlap_is_all_gaps_and_clearly_drifted():
    result = analyse(TRANSLATIONS + [f"reverse the string '{w}' in python" for w in CITIES])
    assert result.coverage.get_column("is_gap").all()
    assert result.summary["gap_share"] == 1.0
    assert result.summary["drift"]["auc"] > 0.8
    assert result.summary["evaluation_gap"]["held_out"]["gap_share"] < 0.5


def test_empty_production_says_nothing_could_be_computed():
    ctx = make_context(make_dataset(TRAIN), cluster_labels=TRAIN_CLUSTERS)
    result = CoverageAnalysis().run(ctx, make_dataset([]))
    assert result.coverage.height == result.gaps.height == result.cluster_coverage.height == 0
    assert dict(result.coverage.schema) == COVERAGE_SCHEMA
    assert result.summary["production_rows"] == 0 and "everything" in result.summary["not_computed"]


@pytest.mark.parametrize("train_rows", [1, 2, 3, 5])
def test_tiny_training_sets_never_fail(train_rows):
    result = analyse(COVERED[:6] + TRANSLATIONS[:4], train=TRAIN[:train_rows], clusters=[0] * train_rows)
    assert result.coverage.height == 10
    assert result.coverage.get_column("nearest_row").null_count() == 0
    json.dumps(result.summary)
    not_computed = result.summary["not_computed"]
    if train_rows == 1:
        assert result.coverage.get_column("gap_score").null_count() == 10
        assert "gap_score" in not_computed
    if train_rows < 3:
        assert "evaluation_gap" in not_computed
    if train_rows < 2:
        assert "drift" in not_computed


def test_empty_training_makes_every_production_row_a_gap():
    ctx = make_context(make_dataset([]))
    result = CoverageAnalysis().run(ctx, make_dataset(COVERED[:5]))
    assert result.coverage.get_column("is_gap").all()
    assert result.coverage.get_column("nearest_row").null_count() == 5
    assert result.cluster_coverage.height == 0
    assert {"similarity", "drift", "evaluation_gap", "cluster_coverage"} <= set(result.summary["not_computed"])
    json.dumps(result.summary)


def test_fixed_similarity_threshold_overrides_the_calibration():
    result = analyse(COVERED + TRANSLATIONS, threshold=0.99)
    assert result.coverage.get_column("is_gap").all()  # nothing is that close
    assert result.summary["threshold"] == {
        "method": "fixed similarity",
        "similarity": 0.99,
        "description": "a production row is a gap when its cosine similarity to the nearest training row is below 0.99",
    }


def test_the_audit_runner_stores_the_frames_and_summary(tmp_path):
    from dataaudit.embed import HashingEmbedder
    from dataaudit.result import AuditResult
    from dataaudit.runner import audit
    from tests.conftest import FixedClusterPipeline

    result = audit(
        make_dataset(TRAIN),
        production=make_dataset(COVERED + TRANSLATIONS),
        checks=[],
        embedder=HashingEmbedder(),
        cluster_pipeline=FixedClusterPipeline(labels=TRAIN_CLUSTERS),
    )
    assert result.summary["coverage"]["gap_rows"] == len(TRANSLATIONS)
    reloaded = AuditResult.load(result.save(tmp_path / "audit"))
    assert reloaded.gaps.get_column("keywords").to_list() == result.gaps.get_column("keywords").to_list()
    assert reloaded.coverage.equals(result.coverage)


def test_production_from_shards_keeps_each_rows_file_and_line(tmp_path):
    """Production read from a folder carries ``source_file`` and ``line``, as training rows do."""
    from dataaudit.io.load import load

    folder = tmp_path / "production"
    folder.mkdir()
    first, second = COVERED[:5], TRANSLATIONS[:4]
    (folder / "day-1.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in first))
    (folder / "day-2.jsonl").write_text("\n" + "".join(json.dumps({"prompt": p}) + "\n" for p in second))  # blank first
    production = load(folder)
    ctx = make_context(make_dataset(TRAIN), cluster_labels=TRAIN_CLUSTERS)
    coverage = CoverageAnalysis().run(ctx, production).coverage
    assert list(coverage.columns) == [*COVERAGE_SCHEMA, "source_file"]
    expected = [(str(folder / "day-1.jsonl"), line, prompt) for line, prompt in enumerate(first, start=1)]
    expected += [(str(folder / "day-2.jsonl"), line, prompt) for line, prompt in enumerate(second, start=2)]
    assert coverage.select("source_file", "line", "prompt").rows() == expected
    one_file = CoverageAnalysis().run(ctx, make_dataset(first)).coverage
    assert "source_file" not in one_file.columns and one_file.get_column("line").to_list() == [1, 2, 3, 4, 5]
