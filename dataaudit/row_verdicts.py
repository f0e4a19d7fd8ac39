"""The values of a fine-tune's per-row ``verdict`` column (``finetune/row_verdicts.parquet``).

A leaf module: the fine-tune writes these values and export reads them (``confirmed_only``),
so both import the vocabulary from here rather than one from the other.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CONFIRMED", "CONTRADICTED", "NO_EVIDENCE", "VERDICTS", "RowVerdict"]


class RowVerdict(str, Enum):
    """What the fine-tune says about one flagged row (the ``verdict`` column's values)."""

    CONFIRMED = "confirmed"
    CONTRADICTED = "contradicted"
    NO_EVIDENCE = "no evidence"

    def __str__(self) -> str:
        return self.value


CONFIRMED = RowVerdict.CONFIRMED.value
CONTRADICTED = RowVerdict.CONTRADICTED.value
NO_EVIDENCE = RowVerdict.NO_EVIDENCE.value
VERDICTS = tuple(verdict.value for verdict in RowVerdict)
