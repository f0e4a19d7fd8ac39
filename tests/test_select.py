"""select: budgets, quotas, strategies, the lossless partition and determinism."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.embed import HashingEmbedder
from dataaudit.errors import UsageError
from dataaudit.io.load import load
from dataaudit.registry import STRATEGIES
from dataaudit.result import AuditResult
from dataaudit.selection import parse_budget, select
from dataaudit.selection.diversity import allocate, facility_location

TOPICS = ["card arrival delivery", "exchange rate currency", "top up balance", "refund payment"]


def write_data(tmp_path, n=40, bad=True):
    lines = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        lines.append(json.dumps({"prompt": f"question {i} about {topic} number {i * 7 % 13}",
                                 "completion": f"answer {i} " + "word " * (i % 9)}))
    if bad:
        lines.insert(5, "{broken")
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, load(path, skip_bad_lines=True)


def fake_audit(dataset, findings=(), **columns):
    rows = dataset.frame.get_column("row")
    clusters = [i % len(TOPICS) for i in range(len(rows))]
    frame = pl.DataFrame({"row": rows, "cluster": clusters, "nearest_cluster": clusters, **columns})
    found = pl.DataFrame(list(findings), schema=FINDING_SCHEMA) if findings else pl.DataFrame(schema=FINDING_SCHEMA)
    return AuditResult(rows=frame, findings=found, clusters=pl.DataFrame(),
                       summary={"dataset": {"path": dataset.path, "fingerprint": dataset.fingerprint()}})


def finding(row, check="duplicate", severity="warning"):
    return {"row": row, "check": check, "kind": "near", "score": 0.1, "severity": severity, "cluster": 0,
            "group": None, "reason": f"{check} says so", "suggestion": None, "suggested_value": None}


# -- budget and quotas ---------------------------------------------------------------------------
def test_budget_parses_rows_and_percent_of_the_pool():
    assert parse_budget(10, 40) == 10
    assert parse_budget("10", 40) == 10
    assert parse_budget("25%", 40) == 10
    assert parse_budget("100%", 40) == 40


@pytest.mark.parametrize("budget", [41, "41", "101%", 0, "0%", "abc", "2.5"])
def test_a_budget_outside_the_pool_is_refused_with_the_pool_size(budget):
    with pytest.raises(UsageError, match="pool|budget"):
        parse_budget(budget, 40, total=44)


def test_a_budget_larger_than_the_cleaned_pool_names_the_flagged_rows(tmp_path):
    _, dataset = write_data(tmp_path)
    audit = fake_audit(dataset, [finding(r) for r in (0, 2, 4)])
    with pytest.raises(UsageError, match=r"larger than the pool: 37 row\(s\) remain after dropping 3 flagged"):
        select(dataset, audit, budget=38, embedder=HashingEmbedder())


@settings(max_examples=200, deadline=None)
@given(capacity=st.lists(st.integers(0, 30), min_size=1, max_size=8),
       weights=st.lists(st.floats(0, 10), min_size=8, max_size=8), fraction=st.floats(0, 1))
def test_quotas_add_up_to_the_budget_and_never_exceed_a_cluster(capacity, weights, fraction):
    capacity = np.array(capacity)
    budget = int(round(fraction * capacity.sum()))
    quota = allocate(budget, np.array(weights[: len(capacity)]), capacity)
    assert quota.sum() == budget
    assert (quota <= capacity).all() and (quota >= 0).all()


def test_quotas_follow_the_weights():
    assert allocate(10, np.array([0.5, 0.3, 0.2]), np.array([100, 100, 100])).tolist() == [5, 3, 2]
    # a full cluster's surplus goes to the others
    assert allocate(10, np.array([0.8, 0.1, 0.1]), np.array([2, 100, 100])).tolist() == [2, 4, 4]


def test_facility_location_picks_one_row_per_group_before_a_second():
    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:4]
    vectors = np.repeat(centres, 10, axis=0) + 0.05 * rng.standard_normal((40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picks, gains = facility_location(vectors, 4, seed=0, epsilon=1e-6)
    assert sorted(p // 10 for p in picks) == [0, 1, 2, 3]
    assert (np.diff(gains) <= 1e-6).all()


def test_facility_location_gives_the_same_picks_without_the_dense_matrix():
    vectors = np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dense = facility_location(vectors, 20, seed=3, max_demand=128)
    lazy = facility_location(vectors, 20, seed=3, max_demand=128, dense_limit=0)
    assert dense[0].tolist() == lazy[0].tolist()
    assert np.allclose(dense[1], lazy[1], atol=1e-5)


# -- strategies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["diverse", "random"])
def test_quota_strategies_keep_each_clusters_share(tmp_path, strategy):
    _, dataset = write_data(tmp_path)
    selection = select(dataset, fake_audit(dataset), budget=8, strategy=strategy, embedder=HashingEmbedder())
    assert selection.clusters.get_column("selected").to_list() == [2, 2, 2, 2]
    assert selection.table.get_column("selected").sum() == 8


def test_production_weights_the_quotas_toward_its_traffic(tmp_path):
    _, dataset = write_data(tmp_path)
    production = [f"question about {TOPICS[0]} please {i}" for i in range(30)]
    from dataaudit.io.load import from_records

    prod = from_records([{"prompt": p} for p in production])
    plain = select(dataset, fake_audit(dataset), budget=8, embedder=HashingEmbedder())
    weighted = select(dataset, fake_audit(dataset), budget=8, production=prod, embedder=HashingEmbedder())
    share = weighted.clusters.get_column("production_share").to_list()
    assert share[0] == max(share) and share[0] > 0.5
    assert weighted.clusters.get_column("selected")[0] > plain.clusters.get_column("selected")[0]
    # production_weight 1 takes production's shares alone
    only = select(dataset, fake_audit(dataset), budget=8, production=prod, production_weight=1.0,
                  embedder=HashingEmbedder())
    assert only.clusters.get_column("quota").to_list() == list(np.round(np.array(share) * 8).astype(int))


def test_longest_picks_the_longest_responses(tmp_path):
    _, dataset = write_data(tmp_path)
    selection = select(dataset, fake_audit(dataset), budget=5, strategy="longest", embedder=HashingEmbedder())
    chosen = selection.table.filter(pl.col("selected"))
    others = selection.table.filter(~pl.col("selected"))
    assert chosen.get_column("score").min() >= others.get_column("score").max()


def test_learnability_picks_highest_ifd_below_one_and_needs_the_check(tmp_path):
    _, dataset = write_data(tmp_path)
    n = len(dataset)
    ifd = np.linspace(0.2, 1.3, n)
    selection = select(dataset, fake_audit(dataset, learnability_ifd=ifd), budget=5, strategy="learnability",
                       embedder=HashingEmbedder())
    picked = selection.table.filter(pl.col("selected")).get_column("score").to_numpy()
    eligible = np.sort(ifd[ifd < 1])[-5:]
    assert np.allclose(np.sort(picked), eligible)
    with pytest.raises(UsageError, match="learnability check"):
        select(dataset, fake_audit(dataset), budget=5, strategy="learnability", embedder=HashingEmbedder())


def test_the_cli_choices_are_the_registry():
    assert STRATEGIES.names()[0] == "diverse"
    assert set(STRATEGIES.names()) == {"diverse", "random", "longest", "learnability"}
    for name in STRATEGIES.names():
        assert STRATEGIES.load(name).name == name


# -- outputs -------------------------------------------------------------------------------------
def test_flagged_rows_never_get_selected_and_say_why(tmp_path):
    _, dataset = write_data(tmp_path)
    audit = fake_audit(dataset, [finding(1), finding(3, "format", "error"), finding(6, severity="info")])
    selection = select(dataset, audit, budget="100%", embedder=HashingEmbedder())
    table = selection.table
    assert not table.filter(pl.col("row").is_in([1, 3])).get_column("selected").any()
    assert table.filter(pl.col("row") == 6).get_column("selected").item()  # info is below the default severity
    reason = table.filter(pl.col("row") == 3).get_column("reason").item()
    assert reason.startswith("flagged: format (error)")
    assert table.filter(pl.col("row") == 3).get_column("flagged_by").item().to_list() == ["format"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(budget=st.integers(1, 36), strategy=st.sampled_from(["diverse", "random", "longest"]),
       flagged=st.sets(st.integers(0, 39), max_size=4), seed=st.integers(0, 3))
def test_selected_and_the_rest_partition_the_input_byte_for_byte(tmp_path, budget, strategy, flagged, seed):
    path, dataset = write_data(tmp_path)
    audit = fake_audit(dataset, [finding(r) for r in sorted(flagged)])
    selection = select(dataset, audit, budget=budget, strategy=strategy, seed=seed, embedder=HashingEmbedder())
    out, rest = tmp_path / "subset.jsonl", tmp_path / "rest.jsonl"
    counts = selection.write(out, rejected=rest)
    chosen = out.read_bytes().splitlines(keepends=True)
    assert counts["selected"] == len(chosen) == budget
    original = path.read_bytes().splitlines(keepends=True)
    assert all(line in original for line in chosen)
    rejected = [json.loads(line) for line in rest.read_text().splitlines()]
    assert len(chosen) + len(rejected) == len(original)
    table = pl.read_parquet(tmp_path / "selection.parquet")
    assert table.height == len(dataset) and table.get_column("selected").sum() == budget
    assert sorted(table.filter(pl.col("selected")).get_column("row").to_list()) == selection.rows
    again = select(dataset, audit, budget=budget, strategy=strategy, seed=seed, embedder=HashingEmbedder())
    assert again.table.equals(selection.table)


def test_seeds_change_the_random_pick(tmp_path):
    _, dataset = write_data(tmp_path)
    picks = {tuple(select(dataset, fake_audit(dataset), budget=8, strategy="random", seed=seed,
                          embedder=HashingEmbedder()).rows) for seed in range(4)}
    assert len(picks) > 1


def test_edited_data_is_refused(tmp_path):
    _, dataset = write_data(tmp_path)
    _, other = write_data(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, n=30)
    with pytest.raises(UsageError):
        select(other, fake_audit(dataset), budget=3, embedder=HashingEmbedder())


# -- command line --------------------------------------------------------------------------------
def test_cli_selects_from_an_audit_and_refuses_an_oversized_budget(tmp_path, hashing_cli):
    from dataaudit.cli import main

    path, dataset = write_data(tmp_path)
    audit_dir = tmp_path / "audit"
    result = hashing_cli.invoke(main, ["audit", str(path), "--out", str(audit_dir), "--checks", "duplicate",
                                       "--skip-bad-lines", "--quiet"])
    assert result.exit_code in (0, 1), result.output
    out = tmp_path / "subset.jsonl"
    result = hashing_cli.invoke(main, ["select", str(path), "--audit", str(audit_dir), "--budget", "25%",
                                       "--out", str(out), "--strategy", "random", "--rejected", str(tmp_path / "rest.jsonl")])
    assert result.exit_code == 0, result.output
    assert "Selected 10" in result.output
    assert len(out.read_text().splitlines()) == 10
    table = pl.read_parquet(tmp_path / "selection.parquet")
    assert table.get_column("strategy").unique().to_list() == ["random"]
    result = hashing_cli.invoke(main, ["select", str(path), "--audit", str(audit_dir), "--budget", "41",
                                       "--out", str(tmp_path / "too_many.jsonl")])
    assert result.exit_code == 2
    assert "larger than the pool" in result.output
    assert not (tmp_path / "too_many.jsonl").exists()
