"""``finetune()`` sizes the run from the chosen backend's budget unless told otherwise."""

from __future__ import annotations

import polars as pl
import pytest

from dataaudit.finetune.api import finetune
from dataaudit.finetune.base import Budget
from dataaudit.finetune.causal_lm import CausalLMBackend
from dataaudit.finetune.encoder import EncoderBackend
from dataaudit.finetune.engine import ReferenceFineTune
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
    budget = kind.default_budget
    assert {name: engine_params[name] for name in BUDGET_FIELDS} == {name: getattr(budget, name) for name in BUDGET_FIELDS}


def test_a_language_model_scores_fewer_rows_than_a_classifier():
    causal, encoder = CausalLMBackend.default_budget, EncoderBackend.default_budget
    assert isinstance(causal, Budget) and isinstance(encoder, Budget)
    for name in ("max_examples", "max_production", "max_perturbed", "max_few_shot", "few_shot_k"):
        assert getattr(causal, name) < getattr(encoder, name)


def test_explicit_epochs_and_examples_win_over_the_budget(engine_params):
    dataset = make_dataset(["a question", "another one"], ["an answer", "another answer"])
    finetune(dataset, _audit(dataset), backend="causal-lm", epochs=1, max_examples=40)
    assert engine_params["epochs"] == 1 and engine_params["max_examples"] == 40
