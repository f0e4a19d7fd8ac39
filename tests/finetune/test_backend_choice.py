"""``choose_backend("auto")`` and the relabelled experiment behind ``finetune --relabel``."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest
from click.testing import CliRunner

from dataaudit.errors import UsageError
from dataaudit.finetune.causal_lm import CausalLMBackend
from dataaudit.finetune.encoder import EncoderBackend
from dataaudit.finetune.engine import ReferenceFineTune, choose_backend
from tests.conftest import make_dataset
from tests.finetune.test_engine import FLIPPED, TOPICS, WordVoteBackend, _audit, _data


def test_auto_picks_the_encoder_for_labelled_data():
    backend = choose_backend("auto", make_dataset(["a", "b", "c"], labels=["x", "y", "x"]), model="some/model")
    assert isinstance(backend, EncoderBackend) and backend.model == "some/model"


def test_auto_picks_the_causal_lm_for_prompt_response_data():
    backend = choose_backend("auto", make_dataset(["a", "b"], ["an answer", "another"]), lora=True)
    assert isinstance(backend, CausalLMBackend) and backend.lora is True


def with_labels(labels):
    """A dataset whose label column is ``labels`` (None = an unlabelled row)."""
    dataset = make_dataset([f"prompt {i}" for i in range(len(labels))], labels=["x"] * len(labels))
    return dataclasses.replace(dataset, frame=dataset.frame.with_columns(pl.Series("label", labels, dtype=pl.String)))


def test_auto_needs_labels_on_more_than_half_the_rows():
    assert isinstance(choose_backend("auto", with_labels(["x", "y", None])), EncoderBackend)
    assert isinstance(choose_backend("auto", with_labels(["x", None])), CausalLMBackend)


def test_auto_on_empty_data_and_unknown_names():
    assert isinstance(choose_backend("auto", make_dataset([])), CausalLMBackend)
    with pytest.raises(UsageError, match="unknown backend 'gpt'"):
        choose_backend("gpt", make_dataset(["a"], labels=["x"]))


class RecordingBackend(WordVoteBackend):
    """The word-vote backend that remembers the targets of every training set it is given."""

    def __init__(self):
        super().__init__()
        self.trained_on: list[dict[int, str]] = []

    def fine_tune(self, train, **options):
        self.trained_on.append(dict(zip(train.rows.tolist(), train.targets)))
        return super().fine_tune(train, **options)


def _relabel_audit(dataset, clusters):
    """The engine test's audit, with each flipped row's true label as the machine suggestion."""
    audit = _audit(dataset, clusters)
    truth = {row: next(label for label, words in TOPICS.items() if clusters[row] == list(TOPICS).index(label))
             for row in FLIPPED}
    findings = audit.findings.with_columns(
        pl.col("row").replace_strict(truth, return_dtype=pl.String).alias("suggested_value"))
    return audit.__class__(rows=audit.rows, findings=findings, clusters=audit.clusters, summary=audit.summary), truth


def test_relabel_trains_a_third_model_on_the_suggested_labels():
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    audit, truth = _relabel_audit(dataset, clusters)
    backend = RecordingBackend()
    result = ReferenceFineTune(backend=backend, epochs=2, heldout_fraction=0.25, seed=0, resamples=200,
                               relabel=True).run(dataset, audit)
    raw, cleaned, relabelled = backend.trained_on[:3]
    assert set(relabelled) == set(raw)  # same rows as raw: nothing dropped
    moved = {row for row in raw if raw[row] != relabelled[row]}
    assert moved and moved <= set(FLIPPED)
    assert all(relabelled[row] == truth[row] for row in moved)
    assert not set(cleaned) & moved  # the cleaned run drops what relabel fixes
    assert "relabelled" in result.summary["experiments"]
    assert any(row["finding"].startswith("cleaning (relabelled") for row in result.summary["confirmation"])


def test_without_relabel_there_is_no_relabelled_run():
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    audit, _ = _relabel_audit(dataset, clusters)
    backend = RecordingBackend()
    result = ReferenceFineTune(backend=backend, epochs=1, seed=0, resamples=100).run(dataset, audit)
    assert len(backend.trained_on) == 3  # raw, cleaned, and the few-shot baseline's 1-epoch fit
    assert "relabelled" not in result.summary["experiments"]


def test_the_cli_passes_relabel_through(monkeypatch, tmp_path):
    """``dataaudit finetune --relabel`` reaches the engine (the run itself is the engine tests' job)."""
    import dataaudit.finetune_runner as api
    from dataaudit.cli import main

    seen = {}

    def fake_finetune(data, audit, **options):
        seen.update(options)
        raise UsageError("stop here")

    monkeypatch.setattr(api, "finetune", fake_finetune)
    monkeypatch.setattr("dataaudit.result.AuditResult.load", classmethod(lambda cls, path: "audit"))
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n')
    (tmp_path / "audit").mkdir()
    outcome = CliRunner().invoke(main, ["finetune", str(data), "--audit", str(tmp_path / "audit"), "--relabel"])
    assert "stop here" in outcome.output
    assert seen["relabel"] is True
