"""Per-row verdicts from the reference fine-tune, refinement, and ``export --confirmed-only``."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.export import export_clean
from dataaudit.finetune.dynamics import AMBIGUOUS, EASY, HARD, data_map
from dataaudit.finetune.engine import ReferenceFineTune
from dataaudit.finetune.result import FineTuneResult
from dataaudit.finetune.verdicts import (
    CONFIRM_QUANTILE,
    CONFIRMED,
    CONTRADICTED,
    NO_EVIDENCE,
    ROW_VERDICTS_SCHEMA,
    VERDICTS,
    row_verdicts,
)
from dataaudit.result import AuditResult
from tests.conftest import make_dataset
from tests.finetune.test_engine import FLIPPED, WordVoteBackend, _data
from tests.test_export import fake_result, finding, write_source


def findings(*rows_kinds, check="conflict", score=0.1):
    return pl.DataFrame([{"row": r, "check": check, "kind": kind, "score": score, "severity": "warning", "cluster": 0,
                          "group": None, "reason": "r", "suggestion": None, "suggested_value": None}
                         for r, kind in rows_kinds], schema=FINDING_SCHEMA)


def hand_dynamics(aum=True) -> pl.DataFrame:
    """Rows 0–19 unflagged, AUM 0.0, 0.2, …, 3.8 (confidence 0.50–0.88 alike); the bar is their
    :data:`CONFIRM_QUANTILE` quantile (a little above 0). Flagged: 20 hard (AUM −1.5), 21 learned
    like a typical clean row (3.0), 22 just under the bar, 23 low but within the clean rows' range
    (0.5), 24 exactly on the bar."""
    clean = [0.2 * i for i in range(20)]
    bar = float(np.quantile(clean, CONFIRM_QUANTILE))
    values = clean + [-1.5, 3.0, bar / 2, 0.5, bar]
    regions = [EASY] * 20 + [HARD, EASY, AMBIGUOUS, EASY, AMBIGUOUS]
    confidence = [0.5 + v / 10 for v in values]
    return pl.DataFrame({"row": range(25), "confidence": confidence, "variability": [0.05] * 25,
                         "aum": values if aum else [float("nan")] * 25, "region": regions})


@pytest.mark.parametrize("aum", [True, False], ids=["by AUM", "by confidence (no margins)"])
def test_each_verdict_from_hand_built_dynamics(aum):
    flagged = findings((20, "label_noise"), (21, "label_noise"), (22, "label_noise"), (23, "answer_conflict"),
                       (24, "label_noise"), (25, "label_noise"), (21, "near"))
    verdicts = row_verdicts(flagged.with_columns(pl.when(pl.col("kind") == "near").then(pl.lit("duplicate"))
                                                 .otherwise(pl.col("check")).alias("check")), hand_dynamics(aum))
    assert dict(verdicts.schema) == ROW_VERDICTS_SCHEMA
    by = {(r, c): v for r, c, v in verdicts.select("row", "check", "verdict").iter_rows()}
    assert by[(20, "conflict")] == CONFIRMED      # learned worse than every clean row
    assert by[(22, "conflict")] == CONFIRMED      # worse than all but the hardest 1% of clean rows
    assert by[(21, "conflict")] == CONTRADICTED   # learned as well as a typical clean row
    assert by[(23, "conflict")] == CONTRADICTED   # low, but within the clean rows' range
    assert by[(24, "conflict")] == CONTRADICTED   # on the bar is not below it
    easy = hand_dynamics(aum).with_columns(pl.when(pl.col("row") == 22).then(pl.lit(EASY)).otherwise("region"))
    assert row_verdicts(findings((22, "label_noise")), easy).get_column("verdict").to_list() == [CONTRADICTED]
    assert by[(25, "conflict")] == NO_EVIDENCE    # not trained on (held out)
    assert by[(21, "duplicate")] == NO_EVIDENCE   # dynamics cannot test a duplicate
    assert verdicts.get_column("still_flagged").all()  # without refine nothing is cleared
    held_out = verdicts.filter(pl.col("row") == 25)
    assert held_out.get_column("confidence").is_null().all() and held_out.get_column("aum").is_null().all()


def test_the_bar_follows_the_clean_rows_and_needs_some():
    """Shift every unflagged row's AUM down by 3 (a harder task): the same flagged row is now
    learned better than the hardest clean rows, so the verdict turns; with no unflagged row to
    compare with, no verdict at all."""
    flagged = findings((20, "label_noise"))
    shifted = hand_dynamics().with_columns(pl.when(pl.col("row") < 20).then(pl.col("aum") - 3).otherwise(pl.col("aum")))
    assert row_verdicts(flagged, hand_dynamics()).get_column("verdict").to_list() == [CONFIRMED]
    assert row_verdicts(flagged, shifted).get_column("verdict").to_list() == [CONTRADICTED]
    only_flagged = hand_dynamics().filter(pl.col("row") >= 20)
    every = findings(*[(r, "label_noise") for r in range(20, 25)])
    assert set(row_verdicts(every, only_flagged).get_column("verdict").to_list()) == {NO_EVIDENCE}


def test_refine_clears_contradicted_rows_and_ranks_by_both_signals():
    flagged = findings((20, "label_noise"), (21, "label_noise"), (22, "label_noise"))
    verdicts = row_verdicts(flagged, hand_dynamics().filter(pl.col("row") <= 22), refine=True)  # rows 0–19 clean
    still = dict(verdicts.select("row", "still_flagged").iter_rows())
    assert still == {20: True, 21: False, 22: True}
    assert verdicts.get_column("row").to_list() == [20, 22, 21]  # most likely wrong first
    scores = verdicts.get_column("refined_score").to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_no_findings_no_rows():
    assert row_verdicts(findings(), hand_dynamics()).height == 0


def test_aum_is_the_mean_margin_over_epochs():
    frame = data_map(np.array([5, 6]), np.array([[0.2, 0.9], [0.4, 0.9]]), margin=np.array([[-1.0, 2.0], [0.0, 4.0]]))
    assert frame.get_column("aum").to_list() == [-0.5, 3.0]
    assert data_map(np.array([1]), np.array([[0.5]])).get_column("aum").is_nan().all()


# -- end to end on planted flips -------------------------------------------------------------------
CLEAN_BUT_FLAGGED = (5, 33, 50)  # audit false positives: correct labels the model learns easily


def _audit(dataset, clusters) -> AuditResult:
    rows = pl.DataFrame({"row": list(range(len(dataset))), "cluster": clusters, "nearest_cluster": clusters})
    flagged = [*FLIPPED, *CLEAN_BUT_FLAGGED]
    frame = findings(*[(r, "label_noise") for r in flagged]).with_columns(
        pl.Series("score", [0.05] * len(FLIPPED) + [0.08] * len(CLEAN_BUT_FLAGGED)))
    summary = {"dataset": {"path": "inline", "fingerprint": dataset.fingerprint(), "records": len(dataset)}}
    return AuditResult(rows=rows, findings=frame, clusters=pl.DataFrame({"cluster": [0, 1, 2], "size": [20] * 3}),
                       summary=summary)


@pytest.fixture(scope="module")
def refined() -> tuple[FineTuneResult, AuditResult]:
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    audit = _audit(dataset, clusters)
    engine = ReferenceFineTune(backend=WordVoteBackend(), epochs=3, heldout_fraction=0.1, seed=0, resamples=200,
                               refine=True)
    return engine.run(dataset, audit), audit


def test_planted_flips_are_confirmed_and_false_alarms_cleared(refined):
    """Precision and recall of the label flags before and after refinement, on planted flips."""
    result, _ = refined
    verdicts = result.row_verdicts
    trained = verdicts.filter(pl.col("region").is_not_null())
    flips = set(FLIPPED) & set(trained.get_column("row").to_list())
    assert flips, "some flipped rows are in the training split"

    def precision_recall(rows: set[int]) -> tuple[float, float]:
        return len(rows & flips) / max(1, len(rows)), len(rows & flips) / len(flips)

    before = precision_recall(set(trained.get_column("row").to_list()))
    after = precision_recall(set(trained.filter(pl.col("still_flagged")).get_column("row").to_list()))
    assert after[0] > before[0] and after[1] == before[1] == 1.0
    assert set(trained.filter(pl.col("verdict") == CONFIRMED).get_column("row").to_list()) == flips
    assert result.summary["row_verdicts"]["conflict"]["still_flagged"] == int(verdicts.get_column("still_flagged").sum())


def test_refine_trains_every_row_flagged_for_its_label():
    """Refinement needs each such row's dynamics: none is held out (without refine, some are)."""
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    audit = _audit(dataset, clusters)
    flagged = {*FLIPPED, *CLEAN_BUT_FLAGGED}
    for refine in (False, True):
        engine = ReferenceFineTune(backend=WordVoteBackend(), epochs=1, heldout_fraction=0.5, seed=0, resamples=50,
                                   refine=refine)
        trained = set(engine.run(dataset, audit).dynamics.get_column("row").to_list())
        assert (flagged <= trained) is refine


def test_row_verdicts_round_trip_and_join_into_the_report_findings(refined, tmp_path):
    from dataaudit.finetune_runner import with_verdicts

    result, audit = refined
    result.save(tmp_path / "finetune")
    loaded = FineTuneResult.load(tmp_path / "finetune")
    assert loaded.row_verdicts.equals(result.row_verdicts)
    joined = with_verdicts(audit.findings, result.row_verdicts)
    assert joined.height == audit.findings.height and set(joined.get_column("verdict").to_list()) <= set(VERDICTS)


# -- export --confirmed-only -------------------------------------------------------------------------
VERDICT_ROWS = st.lists(st.tuples(st.sampled_from([0, 1, 3, 4]), st.sampled_from(["duplicate", "conflict"]),
                                  st.sampled_from(VERDICTS)), max_size=8, unique_by=lambda t: t[:2])
FLAGS = st.lists(st.tuples(st.sampled_from([0, 1, 3, 4]), st.sampled_from(["duplicate", "conflict"])), max_size=8)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=FLAGS, verdict_rows=VERDICT_ROWS)
def test_confirmed_only_drops_exactly_the_confirmed_rows_and_loses_nothing(tmp_path, flags, verdict_rows):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [finding(row, check) for row, check in flags])
    verdicts = pl.DataFrame(verdict_rows, schema={"row": pl.Int64, "check": pl.String, "verdict": pl.String}, orient="row")
    clean, rejected = tmp_path / "c.jsonl", tmp_path / "r.jsonl"
    export_clean(dataset, result, clean=clean, rejected=rejected, drop=None, confirmed_only=verdicts)
    kept = clean.read_text().splitlines()
    entries = [json.loads(line) for line in rejected.read_text().splitlines()]
    source = (tmp_path / "data.jsonl").read_text().splitlines()
    # lossless partition: every non-blank line is kept or rejected, exactly once
    rejected_lines = [entry["line"] for entry in entries]
    assert len(kept) + len(rejected_lines) == len([line for line in source if line.strip()]) + source.count("")
    assert len(set(rejected_lines)) == len(rejected_lines)
    confirmed = {(r, c) for r, c, v in verdict_rows if v == CONFIRMED}
    expected = {row for row, check in flags if (row, check) in confirmed}
    line_of = dict(zip(dataset.frame.get_column("row").to_list(), dataset.frame.get_column("line").to_list()))
    dropped_lines = {entry["line"] for entry in entries if entry.get("reasons") and "unparseable" not in str(entry)}
    assert {line_of[r] for r in expected} <= set(rejected_lines)
    assert len(kept) == len(dataset) - len(expected)
    assert dropped_lines >= {line_of[r] for r in expected}


def test_the_cli_needs_a_finetune_for_confirmed_only(tmp_path):
    from click.testing import CliRunner

    from dataaudit.cli import main

    dataset = write_source(tmp_path)
    fake_result(dataset, [finding(0, "conflict")]).save(tmp_path / "audit")
    outcome = CliRunner().invoke(main, ["export", str(tmp_path / "data.jsonl"), "--out", str(tmp_path / "c.jsonl"),
                                        "--rejected", str(tmp_path / "r.jsonl"), "--audit", str(tmp_path / "audit"),
                                        "--confirmed-only"])
    assert outcome.exit_code != 0 and "row_verdicts.parquet" in outcome.output
    (tmp_path / "audit" / "finetune").mkdir()
    pl.DataFrame({"row": [0], "check": ["conflict"], "verdict": [CONTRADICTED]}).write_parquet(
        tmp_path / "audit" / "finetune" / "row_verdicts.parquet")
    outcome = CliRunner().invoke(main, ["export", str(tmp_path / "data.jsonl"), "--out", str(tmp_path / "c.jsonl"),
                                        "--rejected", str(tmp_path / "r.jsonl"), "--audit", str(tmp_path / "audit"),
                                        "--confirmed-only"])
    assert outcome.exit_code == 0, outcome.output
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == len(dataset)  # contradicted: kept
