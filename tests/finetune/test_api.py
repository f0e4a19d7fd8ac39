"""``finetune()`` sizes the run from the chosen backend's budget unless told otherwise."""

from __future__ import annotations

import inspect

import polars as pl
import pytest

from dataaudit.finetune.base import Budget
from dataaudit.finetune.causal_lm import CausalLMBackend
from dataaudit.finetune.encoder import EncoderBackend
from dataaudit.finetune.engine import ReferenceFineTune
from dataaudit.finetune_runner import finetune
from dataaudit.result import AuditResult
from tests.conftest import make_dataset

BUDGET_FIELDS = ("max_examples", "epochs", "max_production", "max_perturbed", "max_few_shot", "few_shot_k",
                 "max_generations")


@pytest.fixture
def engine_params(monkeypatch) -> dict:
    """The parameters ``finetune`` built its engine with (the run itself is skipped)."""
    captured: dict = {}

    def record(self, dataset, audit, *, production=None, progress=None):
        captured.update(self.get_params())
        return "ran"

    monkeypatch.setattr(ReferenceFineTune, "run", record)
    return captured


def _audit(dataset) -> AuditResult:
    return AuditResult(rows=pl.DataFrame({"row": list(range(len(dataset)))}), findings=pl.DataFrame(),
                       clusters=pl.DataFrame(), summary={})


@pytest.mark.parametrize("backend, kind", [("causal-lm", CausalLMBackend), ("encoder", EncoderBackend)])
def test_the_backends_budget_sizes_the_run(engine_params, backend, kind):
    dataset = make_dataset(["a question", "another one"], ["an answer", "another answer"])
    assert finetune(dataset, _audit(dataset), backend=backend) == "ran"
    budget = kind().budget()  # the CPU budget here, the accelerator's where torch sees a GPU
    assert {name: engine_params[name] for name in BUDGET_FIELDS} == {name: getattr(budget, name) for name in BUDGET_FIELDS}


@pytest.mark.parametrize("backend, kind", [("causal-lm", CausalLMBackend), ("encoder", EncoderBackend)])
def test_a_gpu_grows_the_budget(engine_params, monkeypatch, backend, kind):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU as torch would report it
    dataset = make_dataset(["a question", "another one"], ["an answer", "another answer"])
    finetune(dataset, _audit(dataset), backend=backend)
    budget = kind.accelerator_budget
    assert {name: engine_params[name] for name in BUDGET_FIELDS} == {name: getattr(budget, name) for name in BUDGET_FIELDS}
    assert engine_params["max_examples"] > kind.default_budget.max_examples


@pytest.mark.parametrize("kind", [CausalLMBackend, EncoderBackend])
def test_the_budget_follows_the_device_the_backend_trains_on(kind):
    assert kind(device="cpu").budget() is kind.default_budget
    assert kind(device="cuda:1").training_device() == "cuda"
    for device in ("cuda", "cuda:1", "mps"):
        assert kind(device=device).budget() is kind.accelerator_budget
    for name in BUDGET_FIELDS:  # an accelerator never gets less than the CPU
        assert getattr(kind.accelerator_budget, name) >= getattr(kind.default_budget, name)


def test_a_gpu_budget_reaches_the_format_claim_and_a_cpu_budget_does_not():
    """Why the causal LM's budget grows: below FORMAT_MIN_ROW_EPOCHS the format claim reads
    "budget too small" (bench/bench_finetune_causal.py measured where it becomes measurable)."""
    from dataaudit.finetune.confirmation import FORMAT_MIN_ROW_EPOCHS

    trained_share = 1 - inspect.signature(ReferenceFineTune).parameters["heldout_fraction"].default

    def row_epochs(budget: Budget) -> float:
        return trained_share * budget.max_examples * budget.epochs

    assert row_epochs(CausalLMBackend.accelerator_budget) >= FORMAT_MIN_ROW_EPOCHS > row_epochs(CausalLMBackend.default_budget)


def test_the_cli_help_states_the_budgets():
    from click.testing import CliRunner

    from dataaudit.cli import main

    text = " ".join(CliRunner().invoke(main, ["finetune", "--help"]).output.split())
    for budget in (EncoderBackend.default_budget, CausalLMBackend.default_budget,
                   EncoderBackend.accelerator_budget, CausalLMBackend.accelerator_budget):
        assert str(budget.max_examples) in text


def test_a_language_model_scores_fewer_rows_than_a_classifier():
    causal, encoder = CausalLMBackend.default_budget, EncoderBackend.default_budget
    assert isinstance(causal, Budget) and isinstance(encoder, Budget)
    for name in ("max_examples", "max_production", "max_perturbed", "max_few_shot", "few_shot_k"):
        assert getattr(causal, name) < getattr(encoder, name)


def test_explicit_epochs_and_examples_win_over_the_budget(engine_params):
    dataset = make_dataset(["a question", "another one"], ["an answer", "another answer"])
    finetune(dataset, _audit(dataset), backend="causal-lm", epochs=1, max_examples=40)
    assert engine_params["epochs"] == 1 and engine_params["max_examples"] == 40


def test_the_config_files_finetune_tables_reach_the_engine_and_backend_and_arguments_win(engine_params, tmp_path):
    dataset = make_dataset(["a question", "another one"], ["an answer", "another answer"])
    path = tmp_path / "audit.toml"
    path.write_text('[finetune]\nbackend = "encoder"\nepochs = 5\nresamples = 300\nseed = 3\n'
                    '[finetune.encoder]\nlora = true\nbatch_size = 8\n'
                    '[finetune.causal-lm]\nbatch_size = 2\n', encoding="utf-8")
    finetune(dataset, _audit(dataset), config=path, seed=9)
    assert engine_params["backend"]["backend"] == "encoder"
    assert engine_params["backend"]["lora"] is True and engine_params["backend"]["batch_size"] == 8
    assert engine_params["epochs"] == 5 and engine_params["resamples"] == 300 and engine_params["seed"] == 9
    budget = EncoderBackend().budget()
    assert engine_params["max_examples"] == budget.max_examples  # left to the budget
    finetune(dataset, _audit(dataset), config=path, backend="causal-lm", lora=False)
    assert engine_params["backend"]["backend"] == "causal-lm" and engine_params["backend"]["batch_size"] == 2
    assert engine_params["backend"]["lora"] is False
