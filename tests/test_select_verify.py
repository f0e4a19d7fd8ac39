"""Selection verification with the fast word-vote backend: three runs, paired intervals, verdicts."""

from __future__ import annotations

import pytest

from dataaudit.errors import UsageError
from dataaudit.selection.verify import BETTER, NO_EVIDENCE, WORSE, judge, verify_selection
from tests.conftest import make_dataset
from tests.finetune.test_engine import WordVoteBackend, _audit, _data


def test_judge_reads_the_interval_and_the_metric_direction():
    assert judge(0.1, 0.05, 0.15, higher_is_better=True) == (BETTER, None)
    assert judge(0.1, 0.05, 0.15, higher_is_better=False) == (WORSE, None)
    assert judge(-0.1, -0.15, -0.05, higher_is_better=False) == (BETTER, None)
    verdict, factor = judge(0.01, -0.02, 0.04, higher_is_better=True)
    assert verdict == NO_EVIDENCE and factor == pytest.approx(9.0)  # half-width 0.03 = 3x the effect
    assert judge(0.0, -0.02, 0.02, higher_is_better=True) == (NO_EVIDENCE, None)


@pytest.fixture(scope="module")
def labelled():
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    return dataset, _audit(dataset, clusters), clusters


def test_three_runs_on_the_same_rows_give_a_verdict_per_metric(labelled):
    dataset, audit, clusters = labelled
    flagged = set(audit.findings.get_column("row").to_list())
    selected = [r for r in range(0, 60, 4) if r not in flagged]
    result = verify_selection(dataset, audit, selected, backend=WordVoteBackend(), epochs=2, seed=0)
    table = result.comparisons
    assert set(table.get_column("comparison")) == {"selected-random", "selected-full"}
    assert {"heldout"} <= set(table.get_column("set")) and {"accuracy", "loss", "general"} <= set(table.get_column("metric"))
    assert set(table.get_column("verdict")) <= {BETTER, WORSE, NO_EVIDENCE}
    finite = table.filter(table.get_column("ci_low").is_finite())
    assert (finite.get_column("ci_low") <= finite.get_column("effect")).all()
    assert (finite.get_column("effect") <= finite.get_column("ci_high")).all()
    runs = {row["run"]: row for row in result.runs.iter_rows(named=True)}
    assert runs["selected"]["train_rows"] == runs["random"]["train_rows"] == len(selected)
    assert runs["full"]["train_rows"] == result.summary["pool"] - result.summary["heldout"]
    again = verify_selection(dataset, audit, selected, backend=WordVoteBackend(), epochs=2, seed=0)
    assert again.comparisons.equals(table)


def test_a_selected_row_outside_the_cleaned_pool_is_refused(labelled):
    dataset, audit, _ = labelled
    flagged = int(audit.findings.get_column("row")[0])
    with pytest.raises(UsageError, match="not in the cleaned pool"):
        verify_selection(dataset, audit, [0, 1, flagged], backend=WordVoteBackend(), epochs=1)


def test_a_subset_file_maps_back_to_its_rows(tmp_path):
    from dataaudit.io.load import load
    from dataaudit.selection.verify import rows_of_subset

    lines = ['{"prompt": "a", "completion": "1"}', '{"prompt": "b", "completion": "2"}',
             '{"prompt": "a", "completion": "1"}', '{"prompt": "c", "completion": "3"}']
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "subset.jsonl").write_text("\n".join([lines[3], lines[0], lines[2]]) + "\n")
    dataset = load(tmp_path / "data.jsonl")
    assert sorted(rows_of_subset(dataset, tmp_path / "subset.jsonl")) == [0, 2, 3]
    (tmp_path / "other.jsonl").write_text('{"prompt": "z", "completion": "9"}\n')
    with pytest.raises(UsageError, match="line 1 of the selection"):
        rows_of_subset(dataset, tmp_path / "other.jsonl")


def audited_labelled_data(tmp_path, cli):
    """The engine tests' labelled rows as ``data.jsonl`` and their audit by the CLI (``audit/``)."""
    import json

    from dataaudit.cli import main

    prompts, labels, _ = _data()
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": p, "label": l}) + "\n" for p, l in zip(prompts, labels)))
    audit_dir = tmp_path / "audit"
    result = cli.invoke(main, ["audit", str(data), "--out", str(audit_dir), "--checks", "duplicate", "-q"])
    assert result.exit_code in (0, 1), result.output
    return data, audit_dir


def test_cli_finetune_with_a_selection_prints_the_verdicts(tmp_path, hashing_cli, monkeypatch):
    import polars as pl

    import dataaudit.finetune.engine
    from dataaudit.cli import main

    data, audit_dir = audited_labelled_data(tmp_path, hashing_cli)
    subset = tmp_path / "subset.jsonl"
    result = hashing_cli.invoke(main, ["select", str(data), "--audit", str(audit_dir), "--budget", "20%",
                                       "--out", str(subset), "-q"])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(dataaudit.finetune.engine, "choose_backend", lambda *args, **kwargs: WordVoteBackend())
    result = hashing_cli.invoke(main, ["finetune", str(data), "--audit", str(audit_dir), "--selection", str(subset),
                                       "--epochs", "2", "-q"])
    assert result.exit_code == 0, result.output
    saved = pl.read_parquet(audit_dir / "selection_verification.parquet")
    assert set(saved.get_column("comparison")) == {"selected-random", "selected-full"}
    result = hashing_cli.invoke(main, ["finetune", str(data), "--audit", str(audit_dir), "--selection", str(subset),
                                       "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "Selection check" in result.output and "heldout" in result.output
