"""The confirmation engine: fine-tune on the raw and on the cleaned data, measure, and judge.

Experiments on one fixed budget and seed (:class:`ReferenceFineTune`):

* **raw** (A) — fine-tune on the data as audited;
* **cleaned** (B) — the same training rows minus what the export would drop (the same
  :func:`~dataaudit.export.drop_reasons` policy), and optionally **relabelled** (B') — flagged
  labels replaced by the audit's suggestion instead of dropped;
* **few-shot** (C) — the base model, not fine-tuned, helped by training examples.

The held-out rows are carved from the training data per cluster before any of this and are the
same for every experiment. Each experiment is scored on held-out rows, perturbed held-out rows,
and production rows when they carry labels or references; the base model's general ability is
probed before training and after every epoch of the raw run (the epoch sweep behind the
forgetting figure). :mod:`dataaudit.finetune.confirmation` turns the measurements into verdicts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import polars as pl

from dataaudit.dataset import Dataset
from dataaudit.errors import UsageError
from dataaudit.finetune.base import Examples, FineTuneBackend, empty_evaluation, ignore_epoch
from dataaudit.finetune.confirmation import Evidence, confirmation_table, headline
from dataaudit.finetune.dynamics import data_map
from dataaudit.finetune.memory import log_memory, release_memory
from dataaudit.finetune.result import FineTuneResult
from dataaudit.finetune.splits import heldout_split, kept_in_training, stratified_sample
from dataaudit.finetune.verdicts import learnable_kind, row_verdicts, verdict_counts
from dataaudit.params import Component, Interval, Options
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.result import AuditResult
from dataaudit.runtime import torch_threads
from dataaudit.severity import SEVERITIES
from dataaudit.timing import timed

logger = logging.getLogger(__name__)

_NO_ROWS = np.zeros(0, dtype=np.int64)


@dataclass
class _Plan:
    """The rows an audit's experiments share (see :meth:`ReferenceFineTune._plan`)."""

    trainings: dict[str, Examples]
    heldout: Examples
    production: Examples
    perturbed: dict[str, Examples]
    generation: Examples
    flagged: dict[str, set[int]]
    counts: dict[str, int]


@dataclass
class _Outcome:
    """One experiment's measurements."""

    heldout: pl.DataFrame = field(default_factory=empty_evaluation)
    production: pl.DataFrame = field(default_factory=empty_evaluation)
    perturbed: dict[str, pl.DataFrame] = field(default_factory=dict)
    generations: pl.DataFrame = field(default_factory=empty_evaluation)
    formats: pl.DataFrame = field(default_factory=pl.DataFrame)
    dynamics: pl.DataFrame = field(default_factory=pl.DataFrame)
    probe: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class ReferenceFineTune(Component):
    """A reference fine-tune that tests an audit's findings on ``backend``.

    ``max_examples`` caps the rows used (sampled per cluster) so a run fits a CPU budget;
    ``max_perturbed``, ``max_few_shot`` and ``max_generations`` cap the held-out rows scored
    under perturbation, by the few-shot baseline (k examples in context make every prompt k+1
    times longer for a language model) and generated from (the slow part of its evaluation);
    ``min_severity`` is the export policy that defines the cleaned set.
    """

    def __init__(self, *, backend: FineTuneBackend, epochs: int = 3, max_examples: int = 2000,
                 heldout_fraction: float = 0.2, seed: int = 0, relabel: bool = False, few_shot_k: int = 8,
                 min_severity: str = "warning", max_production: int = 1000, max_perturbed: int = 300,
                 max_few_shot: int = 300, max_generations: int = 48, resamples: int = 2000,
                 few_shot_margin: float = 0.02, refine: bool = False):
        self.backend = backend
        self.epochs = epochs
        self.max_examples = max_examples
        self.heldout_fraction = heldout_fraction
        self.seed = seed
        self.relabel = relabel
        self.few_shot_k = few_shot_k
        self.min_severity = min_severity
        self.max_production = max_production
        self.max_perturbed = max_perturbed
        self.max_few_shot = max_few_shot
        self.max_generations = max_generations
        self.resamples = resamples
        self.few_shot_margin = few_shot_margin
        self.refine = refine

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "backend": [FineTuneBackend],
        "epochs": [Interval(int, 1, None)],
        "max_examples": [Interval(int, 2, None)],
        "heldout_fraction": [Interval(float, 0, 1, closed="neither")],
        "seed": [int],
        "relabel": [bool],
        "few_shot_k": [Interval(int, 0, None)],
        "min_severity": [Options(SEVERITIES)],
        "max_production": [Interval(int, 0, None)],
        "max_perturbed": [Interval(int, 0, None)],
        "max_few_shot": [Interval(int, 0, None)],
        "max_generations": [Interval(int, 0, None)],
        "resamples": [Interval(int, 1, None)],
        "few_shot_margin": [Interval(float, 0, None)],
        "refine": [bool],
    }

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["backend"] = self.backend.describe()
        return params

    # -- the run ---------------------------------------------------------------------------------
    @torch_threads()  # every core this process may use, and the caller's count back afterwards
    def run(self, dataset: Dataset, audit: AuditResult, *, production: Dataset | None = None,
            progress: Progress = NULL_PROGRESS) -> FineTuneResult:
        audit.require_same_data(dataset)
        timings: dict[str, float] = {}
        with timed(timings, "prepare"):
            plan = self._plan(dataset, audit, production)
        base = self.backend.base_model()  # loading is not the probe's time
        log_memory("loading the base model")
        with timed(timings, "probe_base"):
            probe_curve = [{"epoch": 0, **self.backend.general_probe(base)}]
        outcomes: dict[str, _Outcome] = {}
        for name, training in plan.trainings.items():
            outcomes[name] = self._experiment(name, training, plan, audit, probe_curve, timings, progress)
            release_memory()  # the tuned model is gone: its pages go back before the next one grows
            log_memory(f"the {name} experiment")
        with timed(timings, "few_shot"):
            few_shot = _scorer(lambda train, examples, **options: self.backend.few_shot(
                train, examples, k=self.few_shot_k, seed=self.seed, **options), plan.trainings["cleaned"], progress)
            few_shot_heldout = few_shot(_subset(plan.heldout, self.max_few_shot, self.seed))
            few_shot_production = few_shot(_subset(plan.production, self.max_few_shot, self.seed))
        log_memory("few-shot scoring")

        experiments = {name: outcome.info for name, outcome in outcomes.items()}
        experiments["few-shot"] = {"k": self.few_shot_k, "heldout": _metric(few_shot_heldout, self.backend.metric),
                                   "production": _metric(few_shot_production, self.backend.metric)}
        dynamics = outcomes["raw"].dynamics
        verdicts = row_verdicts(audit.flagged_rows(min_severity=self.min_severity), dynamics, refine=self.refine)
        evidence = Evidence(
            metric=self.backend.metric, dynamics=dynamics, flagged=plan.flagged,
            heldout={**{name: o.heldout for name, o in outcomes.items()}, "few-shot": few_shot_heldout},
            production={**{name: o.production for name, o in outcomes.items()}, "few-shot": few_shot_production},
            perturbed={name: o.perturbed for name, o in outcomes.items()},
            heldout_with_duplicate=_rows_with_training_duplicate(audit, plan.heldout.rows, plan.trainings["raw"].rows),
            production_gap_rows=_production_gap_rows(audit), probe_curve=probe_curve,
            probe_cleaned=outcomes["cleaned"].probe, formats={name: o.formats for name, o in outcomes.items()},
            seed=self.seed, resamples=self.resamples, few_shot_margin=self.few_shot_margin,
            train_rows=plan.counts["train"], epochs=self.epochs,
        )
        summary = {
            "backend": {**self.backend.describe(), "trained_on": self.backend.training_device(), **self.backend.resources()},
            "parameters": {k: v for k, v in self.get_params().items() if k != "backend"},
            "rows": plan.counts,
            "experiments": experiments,
            "data_map": _region_counts(dynamics),
            "forgetting": [{k: v for k, v in point.items() if k != "items"} for point in probe_curve],
            "confirmation": confirmation_table(evidence),
            "row_verdicts": verdict_counts(verdicts),
            "timings": {k: round(v, 2) for k, v in timings.items()},
        }
        evaluations = [frame for name, o in outcomes.items()
                       for frame in _tagged(name, o.heldout, o.production, o.perturbed, o.generations)]
        evaluations += _tagged("few-shot", few_shot_heldout, few_shot_production, {}, None)
        return FineTuneResult(summary=summary, dynamics=dynamics, evaluations=pl.concat(evaluations, how="diagonal_relaxed"),
                              row_verdicts=verdicts)

    def _plan(self, dataset: Dataset, audit: AuditResult, production: Dataset | None) -> _Plan:
        """Every row choice, made once before any training so all experiments share it: the
        sample, the held-out split (per cluster), the cleaned and relabelled training sets, and
        the perturbed, generation and production sets."""
        from dataaudit.export import drop_reasons, relabel_suggestions
        from dataaudit.finetune.perturb import perturb_all

        examples = _examples(dataset, self.backend.target_column)
        strata = _strata(audit, examples.rows)
        usable = np.flatnonzero([t is not None and p.strip() != "" for t, p in zip(examples.targets, examples.prompts)])
        pool = stratified_sample(usable, strata[usable], self.max_examples, seed=self.seed)
        split = heldout_split(pool, strata[pool], fraction=self.heldout_fraction, seed=self.seed)
        flagged = audit.flagged_rows(min_severity=self.min_severity)
        if self.refine:  # refinement judges each row flagged for its target by its training dynamics
            split = kept_in_training(split, np.flatnonzero(np.isin(examples.rows, _target_flagged_rows(flagged))))
        if len(split.train) < 2 or len(split.heldout) < 1:
            raise UsageError(f"too few usable rows to fine-tune and hold out ({len(usable)} usable)")
        drops = drop_reasons(audit.findings, min_severity=self.min_severity)
        train_raw = examples.take(split.train)
        clean_positions = np.array([r for r in split.train if int(examples.rows[r]) not in drops], dtype=np.int64)
        if len(clean_positions) < 2:
            raise UsageError(f"the cleaned set keeps {len(clean_positions)} of {len(split.train)} training rows; "
                             "nothing to compare — lower --min-severity or audit more data")
        trainings: dict[str, Examples] = {"raw": train_raw, "cleaned": examples.take(clean_positions)}
        if self.relabel:
            suggestions = relabel_suggestions(audit.findings, min_severity=self.min_severity)
            relabelled = [suggestions.get(int(row), target) for row, target in zip(train_raw.rows, train_raw.targets)]
            trainings["relabelled"] = train_raw.with_targets(relabelled)
        heldout = examples.take(split.heldout)
        prod = _production_examples(production, self.backend.target_column, self.max_production, self.seed)
        perturb_source = _subset(heldout, self.max_perturbed, self.seed)
        perturbed = {kind: perturb_source.with_prompts(texts)
                     for kind, texts in perturb_all(perturb_source.prompts, seed=self.seed).items()}
        generation = (_generation_set(audit, heldout, self.max_generations, self.seed) if self.backend.generative
                      else heldout.take(_NO_ROWS))
        counts = {"usable": int(len(usable)), "sampled": int(len(pool)), "train": int(len(split.train)),
                  "train_cleaned": int(len(clean_positions)), "heldout": int(len(split.heldout)),
                  "production": int(len(prod)), "perturbed": int(len(perturb_source)), "generated": int(len(generation))}
        return _Plan(trainings=trainings, heldout=heldout, production=prod, perturbed=perturbed, generation=generation,
                     flagged=_flagged_by_check(flagged), counts=counts)

    def _experiment(self, name: str, training: Examples, plan: _Plan, audit: AuditResult,
                    probe_curve: list[dict[str, Any]], timings: dict[str, float], progress: Progress) -> _Outcome:
        """Train on ``training`` and measure the model on every shared set. Only the raw run
        probes general ability after each epoch (the epoch sweep) and yields the data map."""
        after_epoch = self._probe_into(probe_curve, timings) if name == "raw" else ignore_epoch
        trained = self.backend.fine_tune(training, epochs=self.epochs, seed=self.seed, progress=progress,
                                         after_epoch=after_epoch)
        timings[f"fine_tune_{name}"] = round(trained.seconds, 3)  # training alone: the epoch sweep is its own stage
        outcome = _Outcome()
        if name == "raw":
            outcome.dynamics = _dynamics(trained.confidence, trained.margin, training, audit, plan.flagged)
        elif name == "cleaned":
            with timed(timings, "probe_cleaned"):
                outcome.probe = self.backend.general_probe(trained.model)
        score = _scorer(self.backend.evaluate, trained.model, progress)
        with timed(timings, f"score_{name}"):
            outcome.heldout = score(plan.heldout)
            outcome.production = score(plan.production)
            if name != "relabelled":
                outcome.perturbed = {kind: score(subset) for kind, subset in plan.perturbed.items()}
        with timed(timings, f"generate_{name}"):
            outcome.generations = score(plan.generation, generate=True)
            outcome.formats = _format_adherence(outcome.generations, audit)
        outcome.info = {
            "train_rows": len(training), "epochs": self.epochs, "steps": trained.steps,
            "seconds": round(trained.seconds, 2), "epoch_losses": [round(x, 4) for x in trained.epoch_losses],
            "heldout": _metric(outcome.heldout, self.backend.metric),
            "production": _metric(outcome.production, self.backend.metric),
        }
        return outcome

    def _probe_into(self, curve: list[dict[str, Any]], timings: dict[str, float]):
        """An ``after_epoch`` hook that appends the general probe's result: the epoch sweep."""
        def probe(epoch: int, model: Any) -> None:
            with timed(timings, "epoch_sweep"):
                curve.append({"epoch": epoch + 1, **self.backend.general_probe(model)})

        return probe


# -- helpers ----------------------------------------------------------------------------------------
def _scorer(method, first: Any, progress: Progress):
    """``method(first, examples, ...)`` that returns the empty frame for no examples, so an
    absent production file or generation set costs nothing."""
    def score(examples: Examples, *, generate: bool = False) -> pl.DataFrame:
        if len(examples) == 0:
            return empty_evaluation()
        return method(first, examples, generate=generate, progress=progress)

    return score


def choose_backend(name: str, dataset: Dataset, *, model: str | None = None, lora: bool | None = None) -> FineTuneBackend:
    """``auto`` picks the encoder when the data has labels, the causal LM otherwise."""
    from dataaudit.registry import BACKENDS

    if name == "auto":
        labels = dataset.frame.get_column("label")
        name = "encoder" if labels.null_count() < labels.len() * 0.5 and labels.len() > 0 else "causal-lm"
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; one of auto, {', '.join(BACKENDS.names())}")
    options: dict[str, Any] = {"model": model}
    if lora is not None:
        options["lora"] = lora
    return BACKENDS.load(name)(**options)


def _examples(dataset: Dataset, target_column: str) -> Examples:
    frame = dataset.frame
    targets = frame.get_column(target_column)
    if targets.null_count() == targets.len():
        targets = frame.get_column("response")
    return Examples(
        rows=frame.get_column("row").to_numpy().astype(np.int64),
        prompts=[p or "" for p in frame.get_column("prompt").to_list()],
        targets=[t if t is not None and t.strip() != "" else None for t in targets.to_list()],
        systems=frame.get_column("system").to_list(),
    )


def _production_examples(production: Dataset | None, target_column: str, limit: int, seed: int) -> Examples:
    if production is None or len(production) == 0:
        return Examples(rows=_NO_ROWS, prompts=[], targets=[], systems=[])
    return _subset(_examples(production, target_column), limit, seed)


def _subset(examples: Examples, limit: int, seed: int) -> Examples:
    """At most ``limit`` examples, a seeded random subset in row order (the same for a seed)."""
    if len(examples) <= limit:
        return examples
    return examples.take(np.sort(np.random.default_rng(seed).permutation(len(examples))[:limit]))


def _strata(audit: AuditResult, rows: np.ndarray) -> np.ndarray:
    column = "nearest_cluster" if "nearest_cluster" in audit.rows.columns else "cluster"
    if column not in audit.rows.columns:
        return np.zeros(len(rows), dtype=np.int64)
    by_row = dict(zip(audit.rows.get_column("row").to_list(), audit.rows.get_column(column).fill_null(-1).to_list()))
    return np.array([by_row.get(int(r), -1) for r in rows], dtype=np.int64)


def _target_flagged_rows(chosen: pl.DataFrame) -> np.ndarray:
    """Rows of the ``chosen`` findings flagged for a wrong label or answer: what training dynamics can test."""
    return chosen.filter(learnable_kind()).get_column("row").unique().to_numpy()


def _flagged_by_check(chosen: pl.DataFrame) -> dict[str, set[int]]:
    flagged: dict[str, set[int]] = {}
    for check, row in chosen.select("check", "row").iter_rows():
        flagged.setdefault(check, set()).add(int(row))
    return flagged


def _dynamics(confidence: np.ndarray, margin: np.ndarray | None, training: Examples, audit: AuditResult,
              flagged: dict[str, set[int]]) -> pl.DataFrame:
    frame = data_map(training.rows, np.nan_to_num(confidence, nan=0.0), margin=margin)
    for check, rows in sorted(flagged.items()):
        frame = frame.with_columns(pl.col("row").is_in(list(rows)).alias(f"is_{check}_issue"))
    cluster = audit.rows.select("row", *[c for c in ("cluster",) if c in audit.rows.columns])
    return frame.join(cluster, on="row", how="left")


def _region_counts(dynamics: pl.DataFrame) -> dict[str, int]:
    if dynamics.height == 0:
        return {}
    counts = dynamics.group_by("region").len().sort("region")
    return dict(zip(counts.get_column("region").to_list(), counts.get_column("len").to_list()))


def _rows_with_training_duplicate(audit: AuditResult, heldout_rows: np.ndarray, train_rows: np.ndarray) -> set[int]:
    if "duplicate_group" not in audit.rows.columns:
        return set()
    groups = audit.rows.select("row", "duplicate_group").drop_nulls()
    train_groups = set(groups.filter(pl.col("row").is_in(train_rows.tolist())).get_column("duplicate_group").to_list())
    held = groups.filter(pl.col("row").is_in(heldout_rows.tolist()) & pl.col("duplicate_group").is_in(list(train_groups)))
    return set(held.get_column("row").to_list())


def _production_gap_rows(audit: AuditResult) -> set[int]:
    if audit.coverage.width == 0 or "is_gap" not in audit.coverage.columns:
        return set()
    return set(audit.coverage.filter(pl.col("is_gap").fill_null(False)).get_column("row").to_list())


def _generation_set(audit: AuditResult, heldout: Examples, limit: int, seed: int) -> Examples:
    """Held-out prompts from clusters where the format check flagged rows: where a model trained
    on the raw data has a mix of formats to learn."""
    if "format_flagged" not in audit.clusters.columns or "cluster" not in audit.rows.columns:
        return heldout.take(_NO_ROWS)
    mixed = set(audit.clusters.filter(pl.col("format_flagged") > 0).get_column("cluster").to_list())
    cluster_of = dict(zip(audit.rows.get_column("row").to_list(), audit.rows.get_column("cluster").to_list()))
    positions = np.array([i for i, row in enumerate(heldout.rows) if cluster_of.get(int(row)) in mixed], dtype=np.int64)
    if len(positions) > limit:
        positions = np.sort(np.random.default_rng(seed).permutation(positions)[:limit])
    return heldout.take(positions)


def _format_adherence(generations: pl.DataFrame, audit: AuditResult) -> pl.DataFrame:
    """Per generated row: its format signature and whether it is its cluster's majority format.

    A generation cut off at the token limit never reached its final line: it chose no format, so
    its ``in_majority`` is null rather than false (``complete`` says which rows those are).
    """
    from dataaudit.features.response_format import describe_format, format_signature

    schema = {"row": pl.Int64, "signature": pl.String, "majority": pl.String, "complete": pl.Boolean,
              "in_majority": pl.Boolean}
    produced = generations.filter(pl.col("output").is_not_null())
    if produced.height == 0 or "format_majority" not in audit.clusters.columns:
        return pl.DataFrame(schema=schema)
    majority_of = dict(zip(audit.clusters.get_column("cluster").to_list(), audit.clusters.get_column("format_majority").to_list()))
    cluster_of = dict(zip(audit.rows.get_column("row").to_list(), audit.rows.get_column("cluster").to_list()))
    records = []
    for row, output, complete in produced.select("row", "output", pl.col("complete").fill_null(True)).iter_rows():
        signature = format_signature(describe_format(output))
        majority = majority_of.get(cluster_of.get(int(row)))
        records.append({"row": row, "signature": signature, "majority": majority, "complete": complete,
                        "in_majority": signature == majority if complete else None})
    return pl.DataFrame(records, schema=schema)


def _metric(frame: pl.DataFrame, metric: str) -> dict[str, Any]:
    value = headline(frame, metric) if frame.height else float("nan")
    return {metric: None if not np.isfinite(value) else round(value, 4), "rows": frame.height}


def _tagged(experiment: str, heldout: pl.DataFrame, production: pl.DataFrame, perturbed: dict[str, pl.DataFrame],
            generations: pl.DataFrame | None) -> list[pl.DataFrame]:
    parts = [("heldout", heldout), ("production", production), *((f"heldout:{k}", v) for k, v in perturbed.items())]
    if generations is not None and generations.height:
        parts.append(("generation", generations))
    return [frame.with_columns(pl.lit(experiment).alias("experiment"), pl.lit(split).alias("split"))
            for split, frame in parts if frame.height]
