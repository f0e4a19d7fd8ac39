"""Does the selection beat random on this dataset? Three fine-tunes and paired intervals.

The reference model is trained, with the same backend, seed and epochs, on the selected rows, on
a seeded random subset of the same size from the same cleaned pool, and on the whole cleaned
pool. The selected and random runs take the same number of optimizer steps (same rows, same
epochs); the full run takes as many more as its size asks, so it is the ceiling, not a same-cost
rival. All three are scored on the same rows: held-out rows carved per cluster from the pool
rows the selection did not take (so neither subset trained on them), production rows with a
reference, and the general-ability probe (forgetting).

Each metric's difference (selected − random, selected − full) is a paired bootstrap 95% interval
(:func:`dataaudit.finetune.stats.paired_difference`) and a verdict: ``better`` or ``worse`` when
the interval excludes zero, else ``no evidence``, with how many times more evaluation rows the
interval would need to exclude the same effect (an interval narrows as one over the square root
of the rows).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import polars as pl

from dataaudit.errors import UsageError
from dataaudit.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    from dataaudit.dataset import Dataset
    from dataaudit.finetune.base import FineTuneBackend
    from dataaudit.result import AuditResult

logger = logging.getLogger(__name__)

BETTER, WORSE, NO_EVIDENCE = "better", "worse", "no evidence"
#: Metric → whether higher is better.
_HIGHER_IS_BETTER = {"accuracy": True, "loss": False, "general": True}


@dataclass
class SelectionVerification:
    """What :func:`verify` measured: whether the selection beats a random subset and the full pool.

    ``comparisons`` has one row per (comparison, evaluation set, metric) with the effect, its 95%
    interval, the rows it rests on and the verdict; ``runs`` each training run's size and means.
    """

    comparisons: pl.DataFrame
    runs: pl.DataFrame
    summary: dict[str, Any]

    def save(self, path: str | os.PathLike) -> None:
        """Save the comparisons as Parquet at ``path``.

        The runs and summary go as JSON beside it (``selection_verification.json``), each written atomically; the audit's report shows them
        when ``path`` is in the audit directory.
        """
        from dataaudit.selection.saved import save_verification

        save_verification(self, path)


def verify_selection(dataset: "Dataset | str | os.PathLike", audit: "AuditResult | str | os.PathLike",
                     selected: Sequence[int], *, production: "Dataset | str | os.PathLike | None" = None,
                     backend: "str | FineTuneBackend" = "auto", model: str | None = None, epochs: int | None = None,
                     heldout_fraction: float = 0.15, max_heldout: int = 500, max_production: int = 500,
                     drop: Iterable[str] | None = None, min_severity: str = "warning", include_full: bool = True,
                     seed: int = 0, progress: Progress = NULL_PROGRESS) -> SelectionVerification:
    """Check that a selection trains better than a random subset of its size and the full pool.

    Fine-tunes on ``selected`` (rows of ``dataset``), on a random subset of the same size and on
    the full cleaned pool, and compares them on held-out, production and general-ability rows.

    ``production`` defaults to the production file the audit used, when it had one.
    ``backend`` is a name (``auto`` picks as ``dataaudit finetune`` does) or a backend instance;
    ``epochs`` defaults to the backend's budget for this device.
    """
    from dataaudit.export import drop_reasons
    from dataaudit.finetune.engine import _examples, _production_examples, _strata, choose_backend
    from dataaudit.finetune.splits import heldout_split
    from dataaudit.io.load import load
    from dataaudit.result import AuditResult
    from dataaudit.selection.saved import selection_digest

    dataset = dataset if not isinstance(dataset, (str, os.PathLike)) else load(dataset, skip_bad_lines=True)
    audit = audit if isinstance(audit, AuditResult) else AuditResult.load(audit)
    audit.require_same_data(dataset)
    if production is None:  # as `dataaudit finetune`: the production file the audit itself used
        production = (audit.summary.get("production") or {}).get("path")
    if production is not None and isinstance(production, (str, os.PathLike)):
        production = load(production, skip_bad_lines=True)
    chosen = choose_backend(backend, dataset, model=model) if isinstance(backend, str) else backend
    epochs = chosen.budget().epochs if epochs is None else epochs
    examples = _examples(dataset, chosen.target_column)
    rows = examples.rows
    flagged = set(drop_reasons(audit.findings, drop=drop, min_severity=min_severity))
    pool = np.array([r for r in rows.tolist() if r not in flagged], dtype=np.int64)
    selected = np.unique(np.asarray(list(selected), dtype=np.int64))
    outside = np.setdiff1d(selected, pool)
    if outside.size:
        raise UsageError(f"{outside.size} selected row(s) are not in the cleaned pool (flagged or unknown), "
                         f"first row {int(outside[0])}")
    rest = np.setdiff1d(pool, selected)
    fraction = min(heldout_fraction * len(pool), max_heldout) / max(len(rest), 1)
    if not 0 < fraction < 1 or len(rest) < 2:
        raise UsageError(f"the selection leaves {len(rest)} pool row(s) to hold out; select fewer rows to verify it")
    held = heldout_split(rest, _strata(audit, rest), fraction=fraction, seed=seed).heldout
    trainable = np.setdiff1d(pool, held)
    rng = np.random.default_rng(seed)
    random_rows = np.sort(rng.choice(trainable, size=len(selected), replace=False))
    position = {int(r): i for i, r in enumerate(rows.tolist())}
    take = lambda chosen_rows: examples.take([position[int(r)] for r in chosen_rows])  # noqa: E731
    trainings = {"selected": take(selected), "random": take(random_rows)}
    if include_full:
        trainings["full"] = take(trainable)
    heldout = take(held)
    prod = _production_examples(production, chosen.target_column, max_production, seed)
    base_probe = chosen.general_probe(chosen.base_model())
    measured: dict[str, dict[str, np.ndarray]] = {}
    runs = []
    for name, training in trainings.items():
        trained = chosen.fine_tune(training, epochs=epochs, seed=seed, progress=progress)
        metrics = {}
        for split, evaluation in (("heldout", heldout), ("production", prod)):
            if len(evaluation) == 0:
                continue
            frame = chosen.evaluate(trained.model, evaluation, progress=progress)
            metrics[f"{split}/loss"] = frame.get_column("loss").to_numpy()
            correct = frame.get_column("correct").to_numpy()
            if np.isfinite(correct).any():
                metrics[f"{split}/accuracy"] = correct
        metrics["forgetting/general"] = np.asarray(chosen.general_probe(trained.model).get("items", []), dtype=float)
        measured[name] = metrics
        runs.append({"run": name, "train_rows": len(training), "steps": trained.steps,
                     **{key: float(np.nanmean(values)) if len(values) else None for key, values in metrics.items()}})
        logger.info("selection verification: %s trained on %d rows", name, len(training))
    comparisons = [_compare(f"selected-{other}", measured["selected"], measured[other], seed=seed)
                   for other in trainings if other != "selected"]
    table = pl.DataFrame([row for part in comparisons for row in part])
    summary = {"backend": chosen.name, "epochs": epochs, "seed": seed, "selected": len(selected),
               "selection_digest": selection_digest(selected),
               "pool": len(pool), "heldout": len(held), "production": len(prod),
               "base_general": float(np.mean(base_probe.get("items") or [base_probe["score"]]))}
    return SelectionVerification(comparisons=table, runs=pl.DataFrame(runs), summary=summary)


def rows_of_subset(dataset: "Dataset", subset: "Dataset | str | os.PathLike") -> list[int]:
    """Find the rows of ``dataset`` whose records ``subset`` holds (byte for byte).

    ``subset`` is a ``dataaudit select`` output; a repeated record matches as many rows as it
    repeats. Refuses a record not in ``dataset``, naming its line.
    """
    from dataaudit.io.load import load

    subset = subset if not isinstance(subset, (str, os.PathLike)) else load(subset, skip_bad_lines=False)
    waiting: dict[bytes, list[int]] = {}
    for row, record in zip(dataset.frame.get_column("row").to_list(), dataset.frame.get_column("record").to_list()):
        waiting.setdefault(_record_key(record), []).append(int(row))
    rows = []
    for line, record in zip(subset.frame.get_column("line").to_list(), subset.frame.get_column("record").to_list()):
        candidates = waiting.get(_record_key(record))
        if not candidates:
            raise UsageError(f"line {line} of the selection is not a record of the audited data (or repeats one "
                             f"more often than the data does)")
        rows.append(candidates.pop(0))
    return rows


def _record_key(record: Any) -> bytes:
    return record if isinstance(record, bytes) else str(record).encode()


def _compare(name: str, a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, seed: int) -> list[dict[str, Any]]:
    from dataaudit.finetune.stats import paired_difference

    out = []
    for key in a:
        if key not in b or len(a[key]) != len(b[key]) or len(a[key]) == 0:
            continue
        split, metric = key.split("/")
        interval = paired_difference(a[key], b[key], seed=seed)
        verdict, needed = judge(interval.estimate, interval.low, interval.high, higher_is_better=_HIGHER_IS_BETTER[metric])
        out.append({"comparison": name, "set": split, "metric": metric, "effect": interval.estimate,
                    "ci_low": interval.low, "ci_high": interval.high, "n": interval.n_a, "verdict": verdict,
                    "rows_factor_needed": needed})
    return out


def judge(estimate: float, low: float, high: float, *, higher_is_better: bool) -> tuple[str, float | None]:
    """Judge an effect: ``better``/``worse`` when its interval excludes zero, else ``no evidence``.

    With no evidence, also say how many times more rows would narrow the interval to exclude zero
    at this estimate (None when the estimate is zero or unknown).
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return NO_EVIDENCE, None
    if low > 0 or high < 0:
        good = (low > 0) == higher_is_better
        return (BETTER if good else WORSE), None
    half = (high - low) / 2
    if not np.isfinite(estimate) or estimate == 0:
        return NO_EVIDENCE, None
    return NO_EVIDENCE, float((half / abs(estimate)) ** 2)
