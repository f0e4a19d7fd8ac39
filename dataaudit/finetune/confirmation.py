"""One rule per audit claim: what the claim predicts about a fine-tuned model, what the reference
fine-tune measured, and whether the measurement bears the claim out.

Every rule works on per-example *quality* (higher is better: correctness for a classifier,
minus the response loss for a language model), so the same rule serves both backends; the
measurement text quotes the backend's own metric. Rules return ``None`` when their finding has
nothing to test on (no flagged rows, no production file) — the table then simply lacks that row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import polars as pl

from dataaudit.finetune import stats
from dataaudit.finetune.dynamics import HARD


@dataclass
class Evidence:
    """Everything the rules read; filled by the engine."""

    metric: str
    dynamics: pl.DataFrame                      # A's data map (row, confidence, region, ...)
    flagged: dict[str, set[int]]                # check -> flagged training rows
    heldout: dict[str, pl.DataFrame]            # experiment -> evaluation on held-out rows
    production: dict[str, pl.DataFrame]         # experiment -> evaluation on production rows
    perturbed: dict[str, dict[str, pl.DataFrame]]  # experiment -> perturbation -> evaluation
    heldout_with_duplicate: set[int]
    production_gap_rows: set[int]
    probe_curve: list[dict[str, Any]]           # [{"epoch": 0 (base) .., "score": .., "items": [...]}]
    probe_cleaned: dict[str, Any]
    formats: dict[str, pl.DataFrame] = field(default_factory=dict)  # experiment -> row, in_majority
    seed: int = 0
    resamples: int = 2000
    few_shot_margin: float = 0.02
    train_rows: int = 0                         # the raw run's budget: rows × epochs trained on
    epochs: int = 0


Rule = Callable[[Evidence], "dict[str, Any] | None"]

#: Rows × epochs below which a causal LM's format claim is not measurable: on GSM8K with 15% of
#: answers reformatted, 300 rows × 1 epoch left the raw and cleaned runs' majority-format shares
#: equal, 700 rows × 2 epochs separated them (bench/bench_finetune_causal.py).
FORMAT_MIN_ROW_EPOCHS = 1400
BUDGET_TOO_SMALL = stats.Verdict.BUDGET_TOO_SMALL


def _column(metric: str) -> str:
    return "correct" if metric == "accuracy" else "loss"


def _sign(metric: str) -> float:
    """+1 where higher is better (accuracy), −1 where lower is (loss)."""
    return 1.0 if metric == "accuracy" else -1.0


def quality(frame: pl.DataFrame, metric: str, *, suffix: str = "") -> np.ndarray:
    """Per-example quality, higher is better; ``suffix`` picks a joined frame's other side."""
    return _sign(metric) * frame.get_column(_column(metric) + suffix).to_numpy().astype(np.float64)


def _paired(first: pl.DataFrame, second: pl.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Quality of the same rows scored twice (two models, or original vs perturbed input)."""
    joined = first.join(second, on="row", suffix="_second")
    return quality(joined, metric), quality(joined, metric, suffix="_second")


def headline(frame: pl.DataFrame, metric: str) -> float:
    values = frame.get_column(_column(metric)).to_numpy().astype(np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _fmt(value: float, metric: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.1%}" if metric == "accuracy" else f"{value:.3f}"


def _row(finding: str, prediction: str, measurement: str, interval: stats.Interval | None, verdict: stats.Verdict,
         *, note: str | None = None, **extra: Any) -> dict[str, Any]:
    """One confirmation row: ``verdict`` is a :class:`~dataaudit.finetune.stats.Verdict` value (data),
    ``verdict_note`` the reason behind it where there is one (prose)."""
    record = {"finding": finding, "prediction": prediction, "measurement": measurement,
              "verdict": stats.Verdict(verdict).value, "verdict_note": note}
    if interval is not None:
        record.update(interval.as_dict())
    record.update(extra)
    return record


def _split(frame: pl.DataFrame, rows: set[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    inside = frame.get_column("row").is_in(list(rows))
    return frame.filter(inside), frame.filter(~inside)


def _scored(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    column = _column(metric)
    if column not in frame.columns:  # an experiment that was never scored there
        return frame.clear()
    return frame.filter(pl.col(column).is_not_nan() & pl.col(column).is_not_null())


# -- the rules ------------------------------------------------------------------------------------
def conflicts_are_hard_to_learn(evidence: Evidence) -> dict[str, Any] | None:
    flagged = evidence.flagged.get("conflict", set())
    if not flagged or evidence.dynamics.height == 0:
        return None
    anything = set().union(*evidence.flagged.values())
    dyn = evidence.dynamics
    conflict = dyn.filter(pl.col("row").is_in(list(flagged)))
    clean = dyn.filter(~pl.col("row").is_in(list(anything)))
    if conflict.height == 0:
        return None
    interval = stats.difference(clean["confidence"].to_numpy(), conflict["confidence"].to_numpy(),
                                seed=evidence.seed, n_resamples=evidence.resamples)
    hard_conflict = float((conflict["region"] == HARD).mean())
    hard_clean = float((clean["region"] == HARD).mean()) if clean.height else float("nan")
    measurement = (f"confidence {conflict['confidence'].mean():.2f} on {conflict.height:,} flagged rows vs "
                   f"{clean['confidence'].mean():.2f} on {clean.height:,} unflagged; hard-to-learn "
                   f"{hard_conflict:.0%} vs {hard_clean:.0%}")
    return _row("conflict", "flagged rows stay low-confidence (hard to learn) while training on the raw data",
                measurement, interval, stats.verdict(interval), hard_to_learn_flagged=round(hard_conflict, 4),
                hard_to_learn_unflagged=round(hard_clean, 4))


def _group_comparison(evidence: Evidence, frame: pl.DataFrame, rows: set[int], *, finding: str, prediction: str,
                      inside_better: bool, inside: str, outside: str) -> dict[str, Any] | None:
    """The ``finding`` row comparing scored rows of ``frame`` in ``rows`` with the rest; the
    interval is (predicted better group − the other)."""
    frame = _scored(frame, evidence.metric)
    if frame.height == 0 or not rows:
        return None
    members, rest = _split(frame, rows)
    if members.height == 0:
        return None
    better, worse = (members, rest) if inside_better else (rest, members)
    interval = stats.difference(quality(better, evidence.metric), quality(worse, evidence.metric),
                                seed=evidence.seed, n_resamples=evidence.resamples)
    metric = evidence.metric
    measurement = (f"{metric} {_fmt(headline(members, metric), metric)} on {members.height:,} {inside} vs "
                   f"{_fmt(headline(rest, metric), metric)} on {rest.height:,} {outside}")
    return _row(finding, prediction, measurement, interval, stats.verdict(interval))


def duplicates_flatter_heldout(evidence: Evidence) -> dict[str, Any] | None:
    return _group_comparison(evidence, evidence.heldout.get("raw", pl.DataFrame()), evidence.heldout_with_duplicate,
                             finding="duplicate",
                             prediction="held-out rows with a near-duplicate in training score better (the split flatters)",
                             inside_better=True, inside="held-out rows with a training duplicate", outside="without")


def gaps_hurt_production(evidence: Evidence) -> dict[str, Any] | None:
    return _group_comparison(evidence, evidence.production.get("raw", pl.DataFrame()), evidence.production_gap_rows,
                             finding="coverage gap", prediction="production rows in gaps score worse than covered ones",
                             inside_better=False, inside="production rows in coverage gaps", outside="covered")


def evaluation_gap(evidence: Evidence) -> dict[str, Any] | None:
    heldout = _scored(evidence.heldout.get("raw", pl.DataFrame()), evidence.metric)
    production = _scored(evidence.production.get("raw", pl.DataFrame()), evidence.metric)
    if heldout.height == 0:
        return None
    if production.height == 0:
        return _row("evaluation gap", "held-out scores overstate production",
                    "no production rows with labels or reference responses to score", None, stats.INCONCLUSIVE)
    interval = stats.difference(quality(heldout, evidence.metric), quality(production, evidence.metric),
                                seed=evidence.seed, n_resamples=evidence.resamples)
    measurement = (f"{evidence.metric} {_fmt(headline(heldout, evidence.metric), evidence.metric)} held-out "
                   f"({heldout.height:,}) vs {_fmt(headline(production, evidence.metric), evidence.metric)} "
                   f"production ({production.height:,})")
    return _row("evaluation gap", "held-out scores overstate production", measurement, interval,
                stats.verdict(interval))


def _cleaning(evidence: Evidence, frames: dict[str, pl.DataFrame], where: str, cleaned: str) -> dict[str, Any] | None:
    raw = frames.get("raw")
    clean = frames.get(cleaned)
    if raw is None or clean is None or raw.height == 0:
        return None
    b, a = _paired(raw, clean, evidence.metric)
    if not np.isfinite(a).any():
        return None
    interval = stats.paired_difference(a, b, seed=evidence.seed, n_resamples=evidence.resamples)
    label = "relabelled" if cleaned == "relabelled" else "cleaned"
    measurement = (f"{evidence.metric} {_fmt(headline(clean, evidence.metric), evidence.metric)} after training on "
                   f"the {label} export vs {_fmt(headline(raw, evidence.metric), evidence.metric)} on the raw data "
                   f"({interval.n_a:,} {where} rows)")
    return _row(f"cleaning ({label}, {where})", f"training on the {label} export beats the raw data on {where} rows",
                measurement, interval, stats.verdict(interval))


def cleaning_helps(evidence: Evidence) -> list[dict[str, Any]]:
    results = []
    anything = set().union(*evidence.flagged.values()) if evidence.flagged else set()
    unflagged = {name: frame.filter(~pl.col("row").is_in(list(anything))) for name, frame in evidence.heldout.items()}
    for cleaned in ("cleaned", "relabelled"):
        for where, frames in (("production", {k: _scored(v, evidence.metric) for k, v in evidence.production.items()}),
                              ("unflagged held-out", {k: _scored(v, evidence.metric) for k, v in unflagged.items()})):
            row = _cleaning(evidence, frames, where, cleaned)
            if row is not None:
                results.append(row)
    return results


def brittleness(evidence: Evidence) -> dict[str, Any] | None:
    raw = evidence.perturbed.get("raw", {})
    original = evidence.heldout.get("raw")
    if not raw or original is None:
        return None
    deltas = []
    parts = []
    for experiment in ("raw", "cleaned"):
        base_frame = evidence.heldout.get(experiment)
        kinds = evidence.perturbed.get(experiment, {})
        if base_frame is None or not kinds:
            continue
        drops = []
        for kind, frame in kinds.items():
            before, after = _paired(base_frame, frame, evidence.metric)
            if experiment == "raw":
                deltas.append((before, after))
            finite = np.isfinite(before) & np.isfinite(after)
            drop = float(np.mean(before[finite] - after[finite])) if finite.any() else float("nan")
            drops.append(f"{kind} {drop:+.3f}")
        parts.append(f"{experiment}: " + ", ".join(drops))
    before = np.concatenate([d[0] for d in deltas])
    after = np.concatenate([d[1] for d in deltas])
    interval = stats.paired_difference(before, after, seed=evidence.seed, n_resamples=evidence.resamples)
    unit = "accuracy" if evidence.metric == "accuracy" else "-loss"
    measurement = f"mean {unit} drop under perturbation {interval.estimate:+.3f} (raw); by kind — " + "; ".join(parts)
    return _row("brittleness", "small meaning-preserving input changes lower the fine-tuned model's score",
                measurement, interval, stats.verdict(interval))


def forgetting(evidence: Evidence) -> dict[str, Any] | None:
    curve = evidence.probe_curve
    if len(curve) < 2:
        return None
    base, last = curve[0], curve[-1]
    base_items, last_items = base.get("items"), last.get("items")
    if base_items is not None and last_items is not None and len(base_items) == len(last_items):
        interval = stats.paired_difference(base_items, last_items, seed=evidence.seed, n_resamples=evidence.resamples)
        verdict = stats.verdict(interval)
    else:
        interval = None
        verdict = stats.INCONCLUSIVE
    sweep = ", ".join(f"{point['epoch']}: {point['score']:.3f}" for point in curve)
    cleaned = evidence.probe_cleaned.get("score")
    measurement = f"general-probe score by epoch (0 = base) — {sweep}"
    if cleaned is not None:
        measurement += f"; cleaned run after {curve[-1]['epoch']} epochs: {cleaned:.3f}"
    return _row("forgetting", "fine-tuning lowers general ability on the packaged probe, more with more epochs",
                measurement, interval, verdict,
                probe_by_epoch=[round(float(point["score"]), 4) for point in curve])


def few_shot_baseline(evidence: Evidence) -> dict[str, Any] | None:
    fine = evidence.heldout.get("cleaned")
    shot = evidence.heldout.get("few-shot")
    if fine is None or shot is None or fine.height == 0:
        return None
    tuned, prompted = _paired(fine, shot, evidence.metric)
    interval = stats.paired_difference(tuned, prompted, seed=evidence.seed, n_resamples=evidence.resamples)
    margin = evidence.few_shot_margin if evidence.metric == "accuracy" else evidence.few_shot_margin * abs(np.nanmean(prompted))
    note = None
    if interval.n_a < 5 or not np.isfinite(interval.estimate):
        verdict = stats.INCONCLUSIVE
    elif interval.low > margin:
        verdict = stats.CONFIRMED
    elif interval.estimate <= margin:
        verdict, note = stats.NOT_CONFIRMED, "few-shot is within the margin: fine-tuning is not worth its cost"
    else:
        verdict = stats.INCONCLUSIVE
    measurement = (f"{evidence.metric} {_fmt(headline(fine, evidence.metric), evidence.metric)} fine-tuned (cleaned) vs "
                   f"{_fmt(headline(shot, evidence.metric), evidence.metric)} few-shot on {interval.n_a:,} held-out rows "
                   f"(margin {margin:.3f})")
    return _row("fine-tune vs few-shot", "fine-tuning beats the few-shot baseline by more than the margin",
                measurement, interval, verdict, note=note)


def formats_are_learned(evidence: Evidence) -> dict[str, Any] | None:
    raw = evidence.formats.get("raw")
    clean = evidence.formats.get("cleaned")
    if raw is None or clean is None or raw.height == 0:
        return None
    # Shares over completed generations only: one cut off at the token limit chose no format. The
    # two models finish different prompts, so the comparison is unpaired.
    a = clean.get_column("in_majority").drop_nulls().cast(pl.Float64).to_numpy()
    b = raw.get_column("in_majority").drop_nulls().cast(pl.Float64).to_numpy()
    interval = stats.difference(a, b, seed=evidence.seed, n_resamples=evidence.resamples)
    share_a, share_b = (float(np.mean(x)) if x.size else float("nan") for x in (a, b))
    measurement = (f"majority-format share of completed generations on {raw.height:,} held-out prompts of "
                   f"format-flagged clusters: {share_b:.1%} of {b.size:,} after raw, {share_a:.1%} of {a.size:,} "
                   f"after cleaned ({raw.height - b.size:,} and {clean.height - a.size:,} cut off at the token limit)")
    verdict, note = stats.verdict(interval), None
    budget = evidence.train_rows * evidence.epochs
    if verdict != stats.CONFIRMED and 0 < budget < FORMAT_MIN_ROW_EPOCHS:
        verdict = BUDGET_TOO_SMALL
        note = (f"{evidence.train_rows:,} rows × {evidence.epochs} epochs; the format claim was "
                f"measurable from {FORMAT_MIN_ROW_EPOCHS:,} row-epochs (700 × 2 on GSM8K)")
    return _row("format", "trained on mixed formats, the model reproduces the mix; the cleaned export makes it consistent",
                measurement, interval, verdict, note=note, majority_share_raw=_round_share(share_b),
                majority_share_cleaned=_round_share(share_a), completed_raw=int(b.size), completed_cleaned=int(a.size))


def _round_share(share: float) -> float | None:
    return round(share, 4) if np.isfinite(share) else None


RULES: tuple[Rule, ...] = (conflicts_are_hard_to_learn, formats_are_learned, duplicates_flatter_heldout,
                           gaps_hurt_production, evaluation_gap, brittleness, forgetting, few_shot_baseline)


def confirmation_table(evidence: Evidence) -> list[dict[str, Any]]:
    """Every applicable rule's row, in a fixed order (cleaning rows after the per-finding ones)."""
    rows = [row for rule in RULES if (row := rule(evidence)) is not None]
    return rows + cleaning_helps(evidence)
