"""Per-row verdicts: what the reference fine-tune says about each flagged training row.

The aggregate rule (:func:`~dataaudit.finetune.confirmation.conflicts_are_hard_to_learn`) tells
whether flagged rows *as a group* are harder to learn. This module says it row by row, from the
raw run's training dynamics: a row flagged for a wrong label or answer is

- **confirmed** when the model never came to believe its given target — hard-to-learn on the
  data map, or a negative area under the margin (AUM, Pleiss et al. 2020: on average over the
  epochs another class scored higher than the given one);
- **contradicted** when the model learned it as easily as a typical unflagged row
  (easy-to-learn, mean confidence at least the unflagged rows' median, non-negative AUM);
- **no evidence** otherwise, for rows the fine-tune did not train on (held out, not sampled),
  and for findings whose claim training dynamics cannot test (a duplicate is easy to learn
  whether or not it should be dropped).

``still_flagged`` is the row's flag after refinement: with ``refine`` a contradicted row is
cleared and label findings are re-ranked by ``refined_score``, the geometric mean of the
audit's confident-learning score and the row's dynamics percentile (both in [0, 1], lower =
worse); without it every flagged row stays flagged.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dataaudit.finetune.dynamics import EASY, HARD

CONFIRMED = "confirmed"
CONTRADICTED = "contradicted"
NO_EVIDENCE = "no evidence"
VERDICTS = (CONFIRMED, CONTRADICTED, NO_EVIDENCE)

#: Finding kinds whose claim is "this row's target is wrong": what training dynamics can test.
LEARNABILITY_KINDS = frozenset({"label_noise", "label_conflict", "answer_conflict", "response_conflict"})

ROW_VERDICTS_SCHEMA = {
    "row": pl.Int64,
    "check": pl.String,
    "kind": pl.String,
    "verdict": pl.String,
    "confidence": pl.Float64,
    "variability": pl.Float64,
    "aum": pl.Float64,
    "region": pl.String,
    "audit_score": pl.Float64,
    "refined_score": pl.Float64,
    "still_flagged": pl.Boolean,
}


def row_verdicts(findings: pl.DataFrame, dynamics: pl.DataFrame, *, refine: bool = False) -> pl.DataFrame:
    """One row per (flagged row, check): the verdict and the evidence behind it.

    ``findings`` are the audit's findings that define the cleaned set (``row, check, kind,
    score``); ``dynamics`` is the raw run's data map (``row, confidence, variability, aum,
    region``; see :func:`~dataaudit.finetune.dynamics.data_map`).
    """
    if findings.height == 0:
        return pl.DataFrame(schema=ROW_VERDICTS_SCHEMA)
    flagged = (findings.group_by("row", "check", maintain_order=True)
               .agg(pl.col("kind").sort_by("score").first(), pl.col("score").min().alias("audit_score")))
    evidence = _evidence(dynamics, set(flagged.get_column("row").to_list()))
    joined = flagged.join(evidence, on="row", how="left")
    learnable = pl.col("kind").is_in(list(LEARNABILITY_KINDS))
    trained = pl.col("region").is_not_null()
    confirmed = trained & learnable & ((pl.col("region") == HARD) | (pl.col("aum") < 0).fill_null(False))
    contradicted = (trained & learnable & ~confirmed & (pl.col("region") == EASY)
                    & (pl.col("confidence") >= pl.col("clean_median")) & ~(pl.col("aum") < 0).fill_null(False))
    verdict = (pl.when(confirmed).then(pl.lit(CONFIRMED)).when(contradicted).then(pl.lit(CONTRADICTED))
               .otherwise(pl.lit(NO_EVIDENCE)))
    refined = pl.when(learnable & trained).then((pl.col("audit_score").clip(0, 1) * pl.col("percentile")).sqrt())
    frame = joined.with_columns(verdict.alias("verdict"), refined.alias("refined_score"))
    still = (pl.col("verdict") != CONTRADICTED) if refine else pl.lit(True)
    frame = frame.with_columns(still.alias("still_flagged"))
    return (frame.select(list(ROW_VERDICTS_SCHEMA)).cast(ROW_VERDICTS_SCHEMA)
            .sort(["refined_score", "row", "check"], nulls_last=True))


def _evidence(dynamics: pl.DataFrame, flagged_rows: set[int]) -> pl.DataFrame:
    """Per trained row: its dynamics, its percentile among training rows (AUM where the backend
    measures margins, else confidence; lower = harder) and the unflagged rows' median confidence."""
    schema = {"row": pl.Int64, "confidence": pl.Float64, "variability": pl.Float64, "aum": pl.Float64,
              "region": pl.String, "percentile": pl.Float64, "clean_median": pl.Float64}
    if dynamics.height == 0:
        return pl.DataFrame(schema=schema)
    aum = dynamics.get_column("aum").to_numpy().astype(np.float64) if "aum" in dynamics.columns \
        else np.full(dynamics.height, np.nan)
    confidence = dynamics.get_column("confidence").to_numpy().astype(np.float64)
    signal = aum if np.isfinite(aum).all() else confidence
    order = np.sort(signal)
    percentile = np.searchsorted(order, signal, side="right") / len(order)
    clean = ~dynamics.get_column("row").is_in(list(flagged_rows)).to_numpy()
    clean_median = float(np.median(confidence[clean])) if clean.any() else float(np.median(confidence))
    return pl.DataFrame({
        "row": dynamics.get_column("row"), "confidence": confidence,
        "variability": dynamics.get_column("variability").cast(pl.Float64), "aum": aum,
        "region": dynamics.get_column("region"), "percentile": percentile,
        "clean_median": np.full(dynamics.height, clean_median),
    }, schema=schema)


def verdict_counts(verdicts: pl.DataFrame) -> dict[str, dict[str, int]]:
    """check → verdict → rows, plus ``still_flagged`` per check: the summary's view."""
    counts: dict[str, dict[str, int]] = {}
    for check, verdict, rows in verdicts.group_by("check", "verdict").len().sort("check", "verdict").iter_rows():
        counts.setdefault(check, {})[verdict] = int(rows)
    for check, still in verdicts.group_by("check").agg(pl.col("still_flagged").sum()).iter_rows():
        counts.setdefault(check, {})["still_flagged"] = int(still)
    return counts
