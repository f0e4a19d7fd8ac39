"""The confirmation engine end to end with a fast, deterministic word-vote backend.

The fake learns which label each word votes for; a row whose label was flipped has words that
vote for its true label, so it stays low-confidence — as a mislabelled row does for a real model.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import polars as pl
import pytest

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.finetune.base import Examples, FineTuneBackend, TrainedModel, evaluation_frame
from dataaudit.finetune.engine import ReferenceFineTune
from dataaudit.finetune.result import FineTuneResult
from dataaudit.result import AuditResult
from tests.conftest import make_dataset

TOPICS = {
    "billing": ["invoice", "charge", "refund", "payment", "bill"],
    "shipping": ["parcel", "delivery", "courier", "tracking", "shipment"],
    "account": ["password", "login", "username", "profile", "email"],
}
FLIPPED = {3: "shipping", 27: "account", 45: "billing"}


class WordVoteBackend(FineTuneBackend):
    """Counts label votes per word; sharper each epoch. General 'ability' decays per epoch."""

    name = "word-vote"
    metric = "accuracy"
    target_column = "label"
    generative = False

    def __init__(self, *, smoothing: float = 0.5):
        self.smoothing = smoothing

    def base_model(self):
        return {"votes": {}, "classes": [], "epochs": 0}

    def fine_tune(self, train, *, epochs, seed, progress=None, after_epoch=lambda e, m: None):
        votes: dict[str, Counter] = defaultdict(Counter)
        for prompt, target in zip(train.prompts, train.targets):
            for word in prompt.lower().split():
                votes[word][target] += 1
        classes = sorted(set(train.targets))
        confidence = np.zeros((epochs, len(train)))
        for epoch in range(epochs):
            model = {"votes": votes, "classes": classes, "epochs": epoch + 1}
            probabilities = self._probabilities(model, train.prompts)
            confidence[epoch] = [probabilities[i, classes.index(t)] for i, t in enumerate(train.targets)]
            after_epoch(epoch, model)
        return TrainedModel(model=model, confidence=confidence, epoch_losses=[1.0 / (e + 1) for e in range(epochs)],
                            seconds=0.0, steps=epochs)

    def _probabilities(self, model, prompts):
        classes = model["classes"]
        scores = np.full((len(prompts), len(classes)), self.smoothing)
        for i, prompt in enumerate(prompts):
            for word in prompt.lower().split():
                for c, label in enumerate(classes):
                    scores[i, c] += model["votes"].get(word, Counter())[label]
        scores = scores ** model["epochs"]
        return scores / scores.sum(axis=1, keepdims=True)

    def evaluate(self, model, examples, *, generate=False, progress=None):
        probabilities = self._probabilities(model, examples.prompts)
        return _score(examples, probabilities, model["classes"])

    def few_shot(self, train, examples, *, k, seed, generate=False, progress=None):
        model = self.fine_tune(train.take(np.arange(min(len(train), k))), epochs=1, seed=seed).model
        return self.evaluate(model, examples)

    def general_probe(self, model):
        items = [1.0 - 0.1 * model["epochs"] * (i % 2) for i in range(20)]
        return {"score": float(np.mean(items)), "items": items}


def _score(examples: Examples, probabilities, classes):
    predicted = probabilities.argmax(axis=1)
    correct = [float(classes[p] == t) if t is not None else np.nan for p, t in zip(predicted, examples.targets)]
    loss = [-np.log(probabilities[i, classes.index(t)]) if t in classes else np.nan for i, t in enumerate(examples.targets)]
    return evaluation_frame(examples.rows, loss, correct, [classes[p] for p in predicted])


def _data():
    prompts, labels, clusters = [], [], []
    rng = np.random.default_rng(0)
    for c, (label, words) in enumerate(TOPICS.items()):
        for _ in range(20):
            chosen = rng.choice(words, size=3, replace=False)
            prompts.append(f"question about {' '.join(chosen)} please")
            labels.append(label)
            clusters.append(c)
    for row, wrong in FLIPPED.items():
        labels[row] = wrong
    return prompts, labels, clusters


def _audit(dataset, clusters, *, duplicate_rows=(), conflict_rows=tuple(FLIPPED)) -> AuditResult:
    rows = pl.DataFrame({
        "row": list(range(len(dataset))), "cluster": clusters, "nearest_cluster": clusters,
        "duplicate_group": [0 if r in duplicate_rows else None for r in range(len(dataset))],
    }, schema_overrides={"duplicate_group": pl.Int64})
    findings = pl.DataFrame([
        {"row": r, "check": "conflict", "kind": "label_noise", "score": 0.1, "severity": "error", "cluster": clusters[r],
         "group": None, "reason": "label disagrees with its neighbours", "suggestion": "x", "suggested_value": "x"}
        for r in conflict_rows
    ], schema=FINDING_SCHEMA)
    clusters_frame = pl.DataFrame({"cluster": [0, 1, 2], "size": [20, 20, 20]})
    summary = {"dataset": {"path": "inline", "fingerprint": dataset.fingerprint(), "records": len(dataset)}}
    return AuditResult(rows=rows, findings=findings, clusters=clusters_frame, summary=summary)


@pytest.fixture(scope="module")
def run() -> FineTuneResult:
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    production = make_dataset([f"my {w} problem" for words in TOPICS.values() for w in words],
                               labels=[label for label, words in TOPICS.items() for _ in words])
    engine = ReferenceFineTune(backend=WordVoteBackend(), epochs=3, heldout_fraction=0.25, seed=0, resamples=500)
    return engine.run(dataset, _audit(dataset, clusters), production=production)


def test_flipped_rows_are_hard_to_learn_and_confirmed(run):
    dynamics = run.dynamics
    flipped = dynamics.filter(pl.col("row").is_in(list(FLIPPED)))
    assert flipped.height >= 1
    assert set(flipped.get_column("region").to_list()) == {"hard-to-learn"}
    assert dynamics.filter(pl.col("is_conflict_issue")).height == flipped.height
    conflict = next(r for r in run.summary["confirmation"] if r["finding"] == "conflict")
    assert conflict["hard_to_learn_flagged"] == 1.0
    assert conflict["effect"] > 0


def test_split_is_stratified_and_shared_by_every_experiment(run):
    rows = run.summary["rows"]
    assert rows["heldout"] == 15 and rows["train"] == 45  # a quarter of each 20-row cluster
    assert rows["train_cleaned"] == rows["train"] - sum(1 for r in FLIPPED if r in set(run.dynamics["row"].to_list()))
    heldout = run.evaluations.filter(pl.col("split") == "heldout")
    by_experiment = heldout.group_by("experiment").agg(pl.col("row").sort()).sort("experiment")
    assert len({tuple(r) for r in by_experiment.get_column("row").to_list()}) == 1
    assert set(by_experiment.get_column("experiment").to_list()) == {"raw", "cleaned", "few-shot"}


def test_forgetting_sweep_has_a_point_per_epoch_and_is_confirmed(run):
    forgetting = run.summary["forgetting"]
    assert [point["epoch"] for point in forgetting] == [0, 1, 2, 3]
    assert forgetting[0]["score"] > forgetting[-1]["score"]
    row = next(r for r in run.summary["confirmation"] if r["finding"] == "forgetting")
    assert row["verdict"] == "confirmed"
    assert row["probe_by_epoch"] == [round(p["score"], 4) for p in forgetting]


def test_brittleness_and_production_rows_are_measured(run):
    splits = set(run.evaluations.get_column("split").unique().to_list())
    assert {"heldout", "production", "heldout:typo", "heldout:casing", "heldout:punctuation", "heldout:word_order"} <= splits
    findings = {r["finding"] for r in run.summary["confirmation"]}
    assert {"conflict", "brittleness", "evaluation gap", "fine-tune vs few-shot"} <= findings
    assert run.summary["experiments"]["raw"]["production"]["rows"] == 15


def test_every_confirmation_row_has_a_known_verdict(run):
    for row in run.summary["confirmation"]:
        assert row["verdict"].split(" — ")[0] in {"confirmed", "not confirmed", "inconclusive"}
        assert row["measurement"]


def test_result_round_trips(run, tmp_path):
    run.save(tmp_path / "finetune")
    loaded = FineTuneResult.load(tmp_path / "finetune")
    assert loaded.summary == json.loads(json.dumps(run.summary, default=str))
    assert loaded.dynamics.equals(run.dynamics)
    assert loaded.confirmation.height == len(run.summary["confirmation"])


def test_same_seed_same_result():
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    audit = _audit(dataset, clusters)
    first = ReferenceFineTune(backend=WordVoteBackend(), epochs=2, resamples=200).run(dataset, audit)
    second = ReferenceFineTune(backend=WordVoteBackend(), epochs=2, resamples=200).run(dataset, audit)
    assert first.summary["confirmation"] == second.summary["confirmation"]
    assert first.evaluations.equals(second.evaluations)


def test_no_production_gives_an_inconclusive_evaluation_gap():
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    result = ReferenceFineTune(backend=WordVoteBackend(), epochs=1, resamples=200).run(dataset, _audit(dataset, clusters))
    gap = next(r for r in result.summary["confirmation"] if r["finding"] == "evaluation gap")
    assert gap["verdict"] == "inconclusive"
    assert result.summary["rows"]["production"] == 0


def test_duplicates_with_a_training_copy_are_compared():
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    result = ReferenceFineTune(backend=WordVoteBackend(), epochs=1, resamples=200, heldout_fraction=0.5).run(
        dataset, _audit(dataset, clusters, duplicate_rows=range(0, 60, 2)))
    row = next(r for r in result.summary["confirmation"] if r["finding"] == "duplicate")
    assert row["n_a"] >= 1 and row["n_b"] >= 1


def test_audit_of_other_data_is_refused():
    from dataaudit.errors import UsageError

    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    other = make_dataset([p + "!" for p in prompts], labels=labels)
    with pytest.raises(UsageError, match="differs"):
        ReferenceFineTune(backend=WordVoteBackend(), epochs=1).run(other, _audit(dataset, clusters))


def test_causal_lm_end_to_end_with_format_evidence(tiny_causal_lm, fake_probes):
    """The engine on the causal-LM backend (tiny random Llama): generations from format-flagged
    clusters are classified, every experiment runs, and the table holds the format row."""
    from dataaudit.finetune.causal_lm import CausalLMBackend

    prompts = [f"What is {a} plus {b}?" for a in range(6) for b in range(4)]
    responses = [f"{a} plus {b} makes {a + b}.\n#### {a + b}" if (a + b) % 5 else f"The answer is {a + b}."
                 for a in range(6) for b in range(4)]
    dataset = make_dataset(prompts, responses)
    clusters = [i % 2 for i in range(len(prompts))]
    audit = _audit(dataset, clusters, conflict_rows=(3,))
    odd = [r for r in range(len(prompts)) if "The answer is" in responses[r]]
    audit.findings = pl.concat([audit.findings, pl.DataFrame([
        {"row": r, "check": "format", "kind": "ending", "score": 0.2, "severity": "warning", "cluster": clusters[r],
         "group": None, "reason": "format differs from its cluster's majority", "suggestion": None, "suggested_value": None}
        for r in odd
    ], schema=FINDING_SCHEMA)])
    audit.clusters = pl.DataFrame({"cluster": [0, 1], "size": [12, 12], "format_majority": ["final:####"] * 2,
                                   "format_flagged": [3, 2]})
    backend = CausalLMBackend(model=tiny_causal_lm, batch_size=8, max_length=64, max_new_tokens=6,
                              learning_rate=1e-2, probe_questions=2)
    result = ReferenceFineTune(backend=backend, epochs=2, heldout_fraction=0.25, few_shot_k=2, resamples=200,
                               max_generations=4).run(dataset, audit, production=dataset)
    assert result.summary["rows"]["generated"] == 4
    assert result.summary["rows"]["train_cleaned"] < result.summary["rows"]["train"]
    generations = result.evaluations.filter(pl.col("split") == "generation")
    assert set(generations.get_column("experiment").to_list()) == {"raw", "cleaned"}
    assert generations.get_column("output").null_count() == 0
    assert generations.get_column("complete").null_count() == 0
    findings = {r["finding"]: r for r in result.summary["confirmation"]}
    assert {"format", "evaluation gap", "brittleness", "forgetting", "fine-tune vs few-shot"} <= set(findings)
    format_row = findings["format"]
    completed = generations.filter(pl.col("experiment") == "raw").get_column("complete").sum()
    assert format_row["completed_raw"] == completed
    assert format_row["majority_share_raw"] is None if completed == 0 else 0.0 <= format_row["majority_share_raw"] <= 1.0
    assert result.summary["experiments"]["raw"]["heldout"]["loss"] > 0
    assert len(result.summary["forgetting"]) == 3


def test_a_cleaned_set_with_nothing_left_is_a_clear_error():
    from dataaudit.errors import UsageError

    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    with pytest.raises(UsageError, match="cleaned set keeps 0"):
        ReferenceFineTune(backend=WordVoteBackend(), epochs=1).run(
            dataset, _audit(dataset, clusters, conflict_rows=range(60)))


def test_the_format_row_counts_only_generations_that_finished():
    """Cut-off generations chose no format: the shares are over completed ones, and the row says how
    many were cut off, so a model that rambles is not mistaken for one that mixes formats."""
    from dataaudit.finetune.confirmation import Evidence, formats_are_learned

    def adherence(in_majority):
        return pl.DataFrame({"row": range(len(in_majority)), "complete": [v is not None for v in in_majority],
                             "in_majority": in_majority}, schema={"row": pl.Int64, "complete": pl.Boolean,
                                                                  "in_majority": pl.Boolean})

    empty = pl.DataFrame()
    evidence = Evidence(metric="loss", dynamics=empty, flagged={}, heldout={}, production={}, perturbed={},
                        heldout_with_duplicate=set(), production_gap_rows=set(), probe_curve=[], probe_cleaned={},
                        formats={"raw": adherence([True, False, True, False, None, None]),
                                 "cleaned": adherence([True, True, True, None, None, None])}, resamples=200)
    row = formats_are_learned(evidence)
    assert (row["majority_share_raw"], row["majority_share_cleaned"]) == (0.5, 1.0)
    assert (row["completed_raw"], row["completed_cleaned"]) == (4, 3)
    assert "50.0% of 4 after raw, 100.0% of 3 after cleaned (2 and 3 cut off" in row["measurement"]
