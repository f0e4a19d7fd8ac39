"""Behaviour at the seams the architecture step fixed: seeds, strict JSON, plug-in checks."""

from __future__ import annotations

import json

import polars as pl
import pytest

from dataaudit.checks.base import REGISTRY, Check, Finding, register_check, result_from_findings
from dataaudit.cli import main
from dataaudit.embed import HashingEmbedder
from dataaudit.errors import UsageError
from dataaudit.runner import audit
from dataaudit.severity import Severity, at_least
from tests.conftest import SAMPLE_DATA, FixedClusterPipeline, make_dataset


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


class _FlagsShortPrompts(Check):
    """A plug-in: flags prompts under four words, and reports a NaN and an infinity in its summary."""

    name = "short_prompt_plugin"
    description = "Prompts under four words: too little to learn from."
    kinds = ("short_prompt",)

    def __init__(self, *, max_words: int = 3):
        self.max_words = max_words

    def run(self, ctx):
        prompts = ctx.dataset.frame.get_column("prompt").to_list()
        rows = ctx.dataset.frame.get_column("row").to_list()
        findings = [Finding(row=row, score=0.2, severity="warning", kind="short_prompt", reason=f"{len(p.split())} words",
                            suggestion="write a fuller prompt") for row, p in zip(rows, prompts) if len(p.split()) <= self.max_words]
        return result_from_findings(self.name, ctx, findings, summary={"mean_ratio": float("nan"), "worst": float("inf")})


@pytest.fixture
def plugin():
    register_check(_FlagsShortPrompts)
    yield _FlagsShortPrompts
    REGISTRY.pop(_FlagsShortPrompts.name, None)


def _dataset():
    return make_dataset(["hi", "how do I reset my password please", "thanks", "what is the capital of France today"],
                        ["Hello!", "Click forgot password.", "You're welcome.", "Paris."])


def test_summary_json_is_strict_json_even_when_a_check_reports_nan(tmp_path, plugin):
    result = audit(_dataset(), checks=["short_prompt_plugin", "quality"], embedder=HashingEmbedder(dim=32),
                   cluster_pipeline=FixedClusterPipeline())
    result.save(tmp_path)
    summary = _strict((tmp_path / "summary.json").read_text())
    assert summary["checks"]["short_prompt_plugin"]["mean_ratio"] is None
    assert summary["checks"]["short_prompt_plugin"]["worst"] is None
    assert summary["schema_version"] >= 2
    for line in (tmp_path / "findings.jsonl").read_text().splitlines():
        _strict(line)


def test_a_plugin_checks_findings_are_dropped_by_default(tmp_path, plugin):
    from dataaudit.export import export_clean

    dataset = _dataset()
    result = audit(dataset, checks=["short_prompt_plugin"], embedder=HashingEmbedder(dim=32),
                   cluster_pipeline=FixedClusterPipeline())
    summary = export_clean(dataset, result, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")
    assert summary.dropped_by_check == {"short_prompt_plugin": 2}
    assert summary.kept == 2


def test_the_cli_seed_reaches_the_coverage_analysis(tmp_path, hashing_cli):
    train, production = tmp_path / "train.jsonl", tmp_path / "production.jsonl"
    train.write_text("".join((SAMPLE_DATA / "train.jsonl").read_text().splitlines(keepends=True)[:600]))
    production.write_text("".join((SAMPLE_DATA / "production.jsonl").read_text().splitlines(keepends=True)[:200]))
    outputs = {}
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}"
        ran = hashing_cli.invoke(main, ["audit", str(train), "--production", str(production), "--out", str(out), "--seed", str(seed),
                                        "--checks", "duplicate", "-q"])
        assert ran.exit_code == 0, ran.output
        outputs[seed] = json.loads((out / "summary.json").read_text())["coverage"]
    # The held-out split and the drift subsample follow the seed, so the evaluation gap's figures move.
    assert outputs[0] != outputs[1]


def test_coverage_analysis_takes_the_audit_seed_unless_given_one():
    from dataaudit.coverage import CoverageAnalysis
    from dataaudit.params import with_seed

    assert with_seed(CoverageAnalysis(), 7).seed == 7
    assert with_seed(CoverageAnalysis(seed=3), 7).seed == 3
    own = CoverageAnalysis()
    with_seed(own, 7)
    assert own.seed is None  # the caller's object is never changed


def test_one_severity_type_everywhere():
    frame = pl.DataFrame({"severity": ["info", "error", "warning"]})
    assert frame.filter(at_least("warning")).get_column("severity").to_list() == ["error", "warning"]
    assert Severity.parse("error").rank == 0
    for bad in ("fatal", "WARNING", ""):
        with pytest.raises(UsageError, match="unknown severity"):
            frame.filter(at_least(bad))
    from dataaudit.export import drop_reasons

    with pytest.raises(UsageError, match="unknown severity"):
        drop_reasons(pl.DataFrame(schema={"row": pl.Int64, "check": pl.String, "severity": pl.String}), min_severity="x")


def test_components_validate_parameters_in_one_place():
    from dataaudit.checks.outlier import OutlierCheck
    from dataaudit.cluster.pipeline import ClusterPipeline

    with pytest.raises(UsageError, match="neighbors"):
        OutlierCheck(neighbors=0)
    check = OutlierCheck()
    with pytest.raises(UsageError, match="max_share"):
        check.set_params(max_share=2.0)
    assert check.max_share == 0.01  # a refused change leaves the old value
    with pytest.raises(UsageError, match="no parameter"):
        check.set_params(neighbours=3)
    assert "neighbors=10" in repr(check)
    # Defaults that are components are built per instance, never shared through the signature.
    assert ClusterPipeline().reducer is not ClusterPipeline().reducer
