"""Severity: one type, one rank order, one filter expression.

Every place that filters findings by severity (export, the CLI's ``--fail-on``, the
fine-tune, the report) goes through :func:`at_least`, so a bad name fails the same way
everywhere: a :class:`~dataaudit.errors.UsageError` that lists the valid ones.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # polars is imported where an expression is built, so the CLI starts fast
    import polars as pl


class Severity(str, Enum):
    """Finding severities, most severe first. The value is the name stored in findings."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for the most severe; a smaller rank is worse."""
        return _RANK[self.value]

    @classmethod
    def parse(cls, value: "str | Severity") -> "Severity":
        """The severity named ``value``; a UsageError that lists the choices otherwise."""
        from dataaudit.errors import UsageError

        try:
            return cls(value)
        except ValueError:
            raise UsageError(f"unknown severity {value!r}; one of {', '.join(SEVERITIES)}") from None

    def __str__(self) -> str:
        return self.value


#: Severity names, most severe first (CLI choices, summary keys).
SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
#: ``name → rank`` (0 = most severe), for sorting.
SEVERITY_RANK: dict[str, int] = dict(_RANK)


def rank_expr(column: str = "severity") -> pl.Expr:
    """The rank of a severity column as an integer expression (0 = most severe)."""
    import polars as pl

    return pl.col(column).replace_strict(SEVERITY_RANK, return_dtype=pl.Int64)


def at_least(min_severity: "str | Severity", column: str = "severity") -> pl.Expr:
    """Filter expression: findings at ``min_severity`` or worse."""
    return rank_expr(column) <= Severity.parse(min_severity).rank


def is_at_least(severity: "str | Severity", min_severity: "str | Severity") -> bool:
    """Whether one severity is at ``min_severity`` or worse (the scalar form of :func:`at_least`)."""
    return Severity.parse(severity).rank <= Severity.parse(min_severity).rank
