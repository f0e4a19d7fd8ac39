"""What the server renders, as plain data for the templates: one view per section.

The summary is read in its typed shape (:mod:`dataaudit.summary`). A saved ``summary.json``
is a file older versions wrote and people edit, so :func:`typed_summary` drops, once, any
section whose type is wrong; the views and templates then read the typed keys directly and
use ``.get`` only for keys that are optional. Coverage and fine-tune summaries are free-form
``dict[str, Any]`` and are checked where they are read.

Each check gets a section from its registered class: its ``description``, the generic
findings table, and what its optional ``report_section`` hook returns, rendered in the
report's autoescaping environment. A hook that fails costs its own section a note, never the
report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from dataaudit.checks.base import Check
from dataaudit.jsonsafe import finite_or_none
from dataaudit.summary import AuditSummary, CheckSummary

if TYPE_CHECKING:
    from dataaudit.result import AuditResult

logger = logging.getLogger(__name__)

MAX_UNCOVERED_PROMPTS = 20
MAX_GAP_EXAMPLES = 5
GAP_EXAMPLE_CHARS = 220
KNOWN_CONFIRMATION_COLUMNS = ("finding", "prediction", "measurement", "verdict")
#: Summary sections that are mappings when present (``production`` may also be null).
_MAPPING_SECTIONS = (
    "dataset",
    "production",
    "parameters",
    "clusters",
    "checks",
    "issues_by_check",
    "issues_by_severity",
    "timings",
    "versions",
    "coverage",
    "finetune",
)
#: Keys of a check's summary entry the check section shows in its own way, not in the details table.
_SHOWN_CHECK_KEYS = ("status", "params", "error", "skipped", "by_severity", "flagged")


def typed_summary(summary: Any) -> AuditSummary:
    """``summary`` with every section in its typed shape; a section of the wrong type is left out."""
    if not isinstance(summary, Mapping):
        return {}
    typed: dict[str, Any] = {
        key: value for key, value in summary.items() if key not in _MAPPING_SECTIONS or isinstance(value, Mapping)
    }
    if "checks" in typed:
        typed["checks"] = {
            str(name): info if isinstance(info, Mapping) else {} for name, info in typed["checks"].items()
        }
    return typed  # type: ignore[return-value]


def check_names(result: AuditResult, summary: AuditSummary, findings: pl.DataFrame) -> list[str]:
    """Every check the audit ran (plug-ins included), then any that only the row frame names."""
    ran = replace(result, summary=summary, findings=findings.drop_nulls("check")).checks_run()
    in_rows = [column[3:-6] for column in result.rows.columns if column.startswith("is_") and column.endswith("_issue")]
    return list(dict.fromkeys([*ran, *in_rows]))


@dataclass(frozen=True)
class CheckView:
    """One check's section: the summary entry, the registered description, the hook's markup."""

    index: int
    name: str
    info: CheckSummary
    description: str
    shown: int
    total: int
    details: dict[str, Any]
    extra: Any = None
    extra_error: str | None = None

    @property
    def failed(self) -> bool:
        """The check raised: the report shows it first, in red."""
        return self.info.get("status") == "failed"


def check_views(
    result: AuditResult, summary: AuditSummary, checks: Sequence[str], findings: Sequence[Mapping[str, Any]]
) -> list[CheckView]:
    from dataaudit.checks import available_checks

    registry = available_checks()
    infos = summary.get("checks", {})
    views = []
    for index, name in enumerate(checks):
        info = infos.get(name, {})
        check = registry.get(name)
        extra, error = _extra_section(check, result) if check is not None else (None, None)
        views.append(
            CheckView(
                index=index,
                name=name,
                info=info,
                description=check.description if check is not None else "",
                shown=len(findings[index]["row"]),
                total=findings[index]["total"],
                details={key: value for key, value in info.items() if key not in _SHOWN_CHECK_KEYS},
                extra=extra,
                extra_error=error,
            )
        )
    return views


def _extra_section(check: type[Check], result: AuditResult) -> tuple[Any, str | None]:
    """The markup of the check's ``report_section``, or None and what went wrong."""
    from markupsafe import Markup

    from dataaudit.report.templating import environment, from_source

    try:
        section = check.report_section(result)
        if section is None:
            return None, None
        template = environment().get_template(section.template_name) if section.template_name else from_source(section.template)
        # An autoescaping template's output is markup already.
        return Markup(template.render(**section.context)), None
    except Exception as error:  # a plug-in's bug must not cost the whole report
        logger.warning("the report section of check %r failed", check.name, exc_info=True)
        return None, f"{type(error).__name__}: {error}"


def timings(summary: AuditSummary) -> list[tuple[str, float, float]]:
    """``(stage, seconds, bar width %)`` for every finite timing."""
    numbers = {
        str(k): float(v)
        for k, v in summary.get("timings", {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
    longest = max(numbers.values(), default=0.0) or 1.0
    return [(name, seconds, max(0.0, 100.0 * seconds / longest)) for name, seconds in numbers.items()]


# -- coverage ------------------------------------------------------------------------------------
def coverage_view(summary: AuditSummary, result: AuditResult) -> dict[str, Any] | None:
    """The coverage section's data, or None when the audit had no production sample."""
    coverage = summary.get("coverage", {})
    if not coverage and result.coverage.height == 0 and result.gaps.height == 0:
        return None
    parts = {key: _part(coverage, key) for key in ("drift", "evaluation_gap", "threshold", "not_computed")}
    return {
        "summary": coverage,
        **parts,
        "notes": [
            s
            for s in (
                parts["drift"].get("interpretation"),
                parts["evaluation_gap"].get("explanation"),
                parts["threshold"].get("description"),
            )
            if s
        ],
        "production_rows": coverage.get("production_rows", result.coverage.height or None),
        "gap_clusters": coverage.get("gap_clusters", result.gaps.height),
        "gaps": _gaps(result),
        "cluster_coverage": _cluster_coverage(result.cluster_coverage),
        "uncovered": _uncovered_prompts(result.coverage),
    }


def _part(free_form: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = free_form.get(key)
    return value if isinstance(value, Mapping) else {}


def _gaps(result: AuditResult) -> list[dict[str, Any]] | None:
    """One card per gap topic; None when there is no gap frame to show."""
    gaps = result.gaps
    if gaps.height == 0 or "gap_cluster" not in gaps.columns:
        return None
    labels = {}
    if {"cluster", "label"} <= set(result.clusters.columns):
        labels = {
            int(c): str(label) for c, label in result.clusters.select("cluster", "label").iter_rows() if c is not None
        }
    cards = []
    for gap in gaps.iter_rows(named=True):
        nearest = _as_int(gap.get("nearest_training_cluster"))
        representatives = gap.get("representatives") if isinstance(gap.get("representatives"), list) else []
        cards.append(
            {
                "title": gap.get("label") or f"gap {gap.get('gap_cluster')}",
                "size": gap.get("size"),
                "share": gap.get("share_of_production"),
                "nearest": labels.get(nearest, f"cluster {nearest}") if nearest is not None and nearest >= 0 else None,
                "keywords": [k for k in gap.get("keywords") or [] if k is not None]
                if isinstance(gap.get("keywords"), list)
                else [],
                "collect": _as_int(gap.get("collect")),
                "collect_basis": gap.get("collect_basis") if isinstance(gap.get("collect_basis"), str) else None,
                "examples": [r for r in representatives if r is not None][:MAX_GAP_EXAMPLES],
            }
        )
    return cards


def _cluster_coverage(frame: pl.DataFrame) -> list[dict[str, Any]] | None:
    """Training clusters out of proportion with production, under-covered first; None without the frame."""
    if frame.height == 0 or "status" not in frame.columns:
        return None
    order = {"under_covered": 0, "unused": 1}
    flagged = frame.filter(pl.col("status").cast(pl.String) != "ok").iter_rows(named=True)
    return sorted(
        flagged, key=lambda r: (order.get(str(r.get("status")), 2), -(finite_or_none(r.get("density_ratio")) or 0.0))
    )


def _uncovered_prompts(frame: pl.DataFrame) -> list[str]:
    """The least covered production prompts that belong to no gap topic."""
    if frame.height == 0 or not {"is_gap", "prompt"} <= set(frame.columns):
        return []
    isolated = frame.filter(pl.col("is_gap").fill_null(False))
    if "gap_cluster" in isolated.columns:
        isolated = isolated.filter(pl.col("gap_cluster").is_null())
    order = [c for c in ("gap_score", "similarity") if c in isolated.columns]
    if order:
        isolated = isolated.sort(order, nulls_last=True)
    return [p for p in isolated.head(MAX_UNCOVERED_PROMPTS).get_column("prompt").to_list() if p is not None]


# -- fine-tune -----------------------------------------------------------------------------------
def finetune_view(summary: AuditSummary) -> dict[str, Any] | None:
    """The confirmation table (known columns first) and the other fine-tune numbers."""
    finetune = summary.get("finetune", {})
    if not finetune:
        return None
    records = finetune.get("confirmation")
    confirmation = [r for r in records if isinstance(r, Mapping)] if isinstance(records, list) else []
    seen = [key for record in confirmation for key in record if key != "verdict_note"]  # shown with the verdict
    keys = list(dict.fromkeys([*[k for k in KNOWN_CONFIRMATION_COLUMNS if k in seen], *seen]))
    return {
        "confirmation": confirmation,
        "columns": keys,
        "rest": {k: v for k, v in finetune.items() if k != "confirmation"},
    }


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None

