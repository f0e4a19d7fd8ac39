"""Per-row verdicts: what the reference fine-tune says about each flagged training row.

The aggregate rule (:func:`~dataaudit.finetune.confirmation.conflicts_are_hard_to_learn`) tells
whether flagged rows *as a group* are harder to learn. This module says it row by row, from the
raw run's training dynamics. A trained row flagged for a wrong label or answer is

- **confirmed** when the model learned it worse than all but the hardest
  :data:`CONFIRM_QUANTILE` (1%) of the rows the audit did not flag — by area under the margin
  (AUM, Pleiss et al. 2020: the given target's logit minus the largest other, averaged over the
  epochs) where the backend measures margins, else by mean confidence — and the data map does
  not call it easy-to-learn. The bar comes from the run itself, so it adapts to how hard the
  task is: on TREC's 50 fine classes even clean rows often have a negative AUM, and the fixed
  "hard-to-learn or AUM < 0" this replaces confirmed most of the audit's false alarms;
- **contradicted** otherwise: the model learned the given target within the range of clean rows;
- **no evidence** for rows the fine-tune did not train on (held out, not sampled), and for
  findings whose claim training dynamics cannot test (a duplicate is easy to learn whether or
  not it should be dropped). With ``refine`` the engine holds out none of the rows flagged for
  their target, so only unsampled ones lack evidence.

``still_flagged`` is the row's flag after refinement: with ``refine`` a contradicted row is
cleared and label findings are re-ranked by ``refined_score``, the geometric mean of the
audit's confident-learning score and the row's dynamics percentile (both in [0, 1], lower =
worse); without it every flagged row stays flagged.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dataaudit.finetune.dynamics import EASY
from dataaudit.row_verdicts import CONFIRMED, CONTRADICTED, NO_EVIDENCE, VERDICTS, RowVerdict  # noqa: F401

#: Share of the unflagged trained rows allowed to be learned worse than a confirmed flagged row.
#: Chosen on planted 5% label flips (``bench/bench_label_noise_refine.py --rescore``; see
#: docs/checks/_notes/conflict.md): lower clears more false alarms and more true flips. Of 1%, 2%,
#: 5% and 10%, 1% gave the best F1 on TREC fine, Banking77 and CLINC150 with each of two seeds.
CONFIRM_QUANTILE = 0.01



def learnable_kind() -> pl.Expr:
    """Findings whose claim is "this row's target is wrong" (their ``Kind`` says ``target``, plug-ins'
    included): what training dynamics can test."""
    from dataaudit.checks import target_kinds

    keys = [f"{check}:{kind}" for check, kind in target_kinds()]
    return pl.concat_str([pl.col("check"), pl.col("kind")], separator=":").is_in(keys)


def __getattr__(name: str):
    if name == "LEARNABILITY_KINDS":  # the older, fixed set of kind names
        from dataaudit.checks import target_kinds

        return frozenset(kind for _, kind in target_kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    learnable = learnable_kind()
    trained = pl.col("region").is_not_null()
    tested = trained & learnable & pl.col("clean_bar").is_not_nan()
    below_bar = (pl.col("signal") < pl.col("clean_bar")) & (pl.col("region") != EASY)
    verdict = (pl.when(tested & below_bar).then(pl.lit(CONFIRMED))
               .when(tested).then(pl.lit(CONTRADICTED)).otherwise(pl.lit(NO_EVIDENCE)))
    refined = pl.when(learnable & trained).then((pl.col("audit_score").clip(0, 1) * pl.col("percentile")).sqrt())
    frame = joined.with_columns(verdict.alias("verdict"), refined.alias("refined_score"))
    still = (pl.col("verdict") != CONTRADICTED) if refine else pl.lit(True)
    frame = frame.with_columns(still.alias("still_flagged"))
    return (frame.select(list(ROW_VERDICTS_SCHEMA)).cast(ROW_VERDICTS_SCHEMA)
            .sort(["refined_score", "row", "check"], nulls_last=True))


def _evidence(dynamics: pl.DataFrame, flagged_rows: set[int]) -> pl.DataFrame:
    """Per trained row: its dynamics, the learning signal the verdict reads (AUM where the backend
    measures margins, else confidence; lower = harder), its percentile among training rows, and
    the bar: the signal below which only :data:`CONFIRM_QUANTILE` of the unflagged rows fall."""
    schema = {"row": pl.Int64, "confidence": pl.Float64, "variability": pl.Float64, "aum": pl.Float64,
              "region": pl.String, "signal": pl.Float64, "percentile": pl.Float64, "clean_bar": pl.Float64}
    if dynamics.height == 0:
        return pl.DataFrame(schema=schema)
    aum = dynamics.get_column("aum").to_numpy().astype(np.float64) if "aum" in dynamics.columns \
        else np.full(dynamics.height, np.nan)
    confidence = dynamics.get_column("confidence").to_numpy().astype(np.float64)
    signal = aum if np.isfinite(aum).all() else confidence
    order = np.sort(signal)
    percentile = np.searchsorted(order, signal, side="right") / len(order)
    clean = ~dynamics.get_column("row").is_in(list(flagged_rows)).to_numpy()
    # With no unflagged row to compare with there is no bar: nothing is confirmed or contradicted.
    bar = float(np.quantile(signal[clean], CONFIRM_QUANTILE)) if clean.any() else np.nan
    return pl.DataFrame({
        "row": dynamics.get_column("row"), "confidence": confidence,
        "variability": dynamics.get_column("variability").cast(pl.Float64), "aum": aum,
        "region": dynamics.get_column("region"), "signal": signal, "percentile": percentile,
        "clean_bar": np.full(dynamics.height, bar),
    }, schema=schema)


def verdict_counts(verdicts: pl.DataFrame) -> dict[str, dict[str, int]]:
    """check → verdict → rows, plus ``still_flagged`` per check: the summary's view."""
    counts: dict[str, dict[str, int]] = {}
    for check, verdict, rows in verdicts.group_by("check", "verdict").len().sort("check", "verdict").iter_rows():
        counts.setdefault(check, {})[verdict] = int(rows)
    for check, still in verdicts.group_by("check").agg(pl.col("still_flagged").sum()).iter_rows():
        counts.setdefault(check, {})["still_flagged"] = int(still)
    return counts
