"""Reasoning check: reasoning traces a trainer would teach wrong.

Reasoning data writes a trace before the answer, as ``<think>…</think>`` at the start of an
assistant turn or in a ``reasoning_content`` field. The loader splits a well-formed leading
block into the message's ``reasoning`` (``""`` for an empty block) and leaves anything it
cannot split in the text, where the model would learn it as answer. Per assistant turn:

- ``unclosed_think`` (error): a ``<think>`` with no ``</think>`` after it: the model learns
  to think without ever closing its reasoning;
- ``stray_think_tag`` (warning): a ``</think>`` with no opener (often data written for a
  template that prefills ``<think>``), or a block left mid-text or repeated: the tags and the
  trace are trained as answer;
- ``empty_reasoning`` (warning; info where every block in the data is empty, as in a
  deliberate non-thinking mode): a reasoning block with nothing in it;
- ``no_final_answer`` (error): reasoning with no answer and no tool call after it.

The summary gives the reasoning share of the assistant tokens (a whitespace-word proxy, no
tokenizer needed) as data; the per-row frame has ``reasoning_tokens`` and ``reasoning_share``.
Rows with no reasoning and no ``think>`` in their text are filtered out first and cost nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, ReportSection, register_check, result_from_findings
from dataaudit.context import AuditContext

KINDS: dict[str, Kind] = {
    "unclosed_think": Kind("error", 0.05, "Close the reasoning with </think> before the answer, or drop the row."),
    "stray_think_tag": Kind("warning", 0.3, "Move the reasoning to the start of the turn as one <think>…</think> block "
                            "(or into reasoning_content), and remove the stray tags."),
    "empty_reasoning": Kind("warning", 0.4, "Fill in the reasoning or remove the empty block (keep it only where an empty "
                            "block deliberately marks a non-thinking mode)."),
    "no_final_answer": Kind("error", 0.05, "Add the answer (or the tool call) the reasoning leads to, or drop the row."),
}
#: A token proxy good enough for a share: whitespace-separated words.
TOKEN_PATTERN = r"\S+"
MAX_TURNS_SHOWN = 5


@register_check
class ReasoningCheck(Check):
    """Flags unclosed or stray think tags, empty reasoning blocks, and reasoning with no answer after it."""

    name = "reasoning"
    description = (
        "Reasoning traces trained wrong: an unclosed or stray <think> tag, an empty reasoning block, "
        "or reasoning with no final answer after it."
    )
    kinds = KINDS
    needs = frozenset()

    def __init__(self) -> None:
        """No parameters: every rule is a fact about the text, with no threshold to tune."""

    def run(self, ctx: AuditContext) -> CheckResult:
        """Check the think tags and reasoning of every assistant turn of the rows that have any."""
        frame = ctx.dataset.frame
        element = pl.element().struct
        involved = pl.col("messages").list.eval(
            element.field("reasoning").is_not_null()
            | element.field("content").fill_null("").str.contains("think>", literal=True)
        ).list.any()
        subset = frame.select("row", "messages").filter(frame.select(involved.fill_null(False)).to_series())
        turns = _assistant_turns(subset)
        empty = pl.col("reasoning").is_not_null() & pl.col("reasoning").str.contains(r"^\s*$")
        all_empty = bool(turns.height) and bool(turns.filter(pl.col("reasoning").is_not_null()).select(empty.all()).item())
        opens, closes = pl.col("opens"), pl.col("closes")
        rules = {
            "unclosed_think": opens > closes,
            "stray_think_tag": (closes > opens) | ((opens == closes) & (opens > 0)),
            "empty_reasoning": empty,
            "no_final_answer": pl.col("reasoning").is_not_null() & pl.col("blank") & (pl.col("calls") == 0),
        }
        flagged = (
            turns.with_columns(pl.concat_list([pl.when(rule).then(pl.lit(kind)) for kind, rule in rules.items()])
                               .list.drop_nulls().alias("kind"))
            .filter(pl.col("kind").list.len() > 0)
            .explode("kind")
            .group_by("row", "kind", maintain_order=True)
            .agg("turn")
            .sort("row", "kind")
        )
        findings = [_finding(row, kind, turns_, all_empty=all_empty) for row, kind, turns_ in flagged.iter_rows()]
        by_kind = {kind: 0 for kind in KINDS}
        for finding in findings:
            by_kind[finding.kind] += 1
        tokens = turns.group_by("row").agg(pl.col("reasoning_tokens").sum(), pl.col("answer_tokens").sum(),
                                           pl.col("reasoning").is_not_null().any().alias("has_reasoning"))
        per_row = frame.select("row").join(tokens, on="row", how="left", maintain_order="left")
        reasoning_tokens = per_row.get_column("reasoning_tokens").fill_null(0).cast(pl.Int64)
        answer_tokens = per_row.get_column("answer_tokens").fill_null(0).cast(pl.Int64)
        has_reasoning = per_row.get_column("has_reasoning").fill_null(False)
        total = reasoning_tokens + answer_tokens
        share = pl.Series("share", np.where(has_reasoning.to_numpy() & (total.to_numpy() > 0),
                                            reasoning_tokens.to_numpy() / np.maximum(total.to_numpy(), 1), np.nan))
        share = share.fill_nan(None)
        summary = {
            "rows_with_reasoning": int(has_reasoning.sum()),
            "assistant_turns_with_reasoning": int(turns.get_column("reasoning").is_not_null().sum()),
            "reasoning_tokens": int(reasoning_tokens.sum()),
            "answer_tokens": int(answer_tokens.filter(has_reasoning).sum()),
            "reasoning_share": _ratio(int(reasoning_tokens.sum()), int(total.filter(has_reasoning).sum())),
            "reasoning_share_p50": _quantile(share, 0.5),
            "reasoning_share_p95": _quantile(share, 0.95),
            "token_proxy": "whitespace-separated words",
            "by_kind": by_kind,
        }
        return result_from_findings(self.name, ctx, findings, summary=summary, tokens=reasoning_tokens, share=share)

    @classmethod
    def report_section(cls, result) -> ReportSection | None:
        """Show how many rows carry reasoning and the rows per broken rule, with their fixes."""
        check = ((getattr(result, "summary", None) or {}).get("checks") or {}).get(cls.name)
        if not isinstance(check, dict) or not check.get("rows_with_reasoning") and not any((check.get("by_kind") or {}).values()):
            return None
        kinds = [{"kind": kind, "rows": count, "severity": KINDS[kind].severity, "suggestion": KINDS[kind].suggestion}
                 for kind, count in (check.get("by_kind") or {}).items() if kind in KINDS and count]
        return ReportSection(template_name="checks/reasoning.html.j2", context={"check": check, "kinds": kinds})


def _assistant_turns(subset: pl.DataFrame) -> pl.DataFrame:
    """One row per assistant turn of ``subset``: tag counts, blank answer, calls and word counts."""
    messages = pl.col("messages")
    content, reasoning = pl.col("content").fill_null(""), pl.col("reasoning")
    return (
        subset.select("row", messages, pl.int_ranges(0, messages.list.len()).alias("turn"))
        .explode("messages", "turn")
        .filter(pl.col("turn").is_not_null())
        .unnest("messages")
        .filter(pl.col("role") == "assistant")
        .select(
            "row", "turn", "reasoning",
            content.str.count_matches("<think>", literal=True).alias("opens"),
            content.str.count_matches("</think>", literal=True).alias("closes"),
            content.str.contains(r"^\s*$").alias("blank"),
            pl.col("tool_calls").list.len().fill_null(0).alias("calls"),
            reasoning.fill_null("").str.count_matches(TOKEN_PATTERN).alias("reasoning_tokens"),
            content.str.count_matches(TOKEN_PATTERN).alias("answer_tokens"),
        )
    )


def _finding(row: int, kind: str, turns: list[int], *, all_empty: bool) -> Finding:
    shown = ", ".join(map(str, turns[:MAX_TURNS_SHOWN])) + (f" and {len(turns) - MAX_TURNS_SHOWN} more"
                                                           if len(turns) > MAX_TURNS_SHOWN else "")
    where = f"assistant turn{'s' if len(turns) > 1 else ''} {shown}"
    reasons = {
        "unclosed_think": f"{where}: <think> is never closed by </think>",
        "stray_think_tag": f"{where}: a </think> without its <think>, or a think block left inside the answer text",
        "empty_reasoning": f"{where}: the reasoning block is empty",
        "no_final_answer": f"{where}: reasoning with no answer and no tool call after it",
    }
    spec = KINDS[kind]
    severity, score = spec.severity, spec.score
    if kind == "empty_reasoning" and all_empty:
        severity, score = "info", 0.9
        reasons[kind] += " (as is every reasoning block in the data: a deliberate convention?)"
    return Finding(row=int(row), score=score, severity=severity, kind=kind, reason=reasons[kind], suggestion=spec.suggestion)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantile(values: pl.Series, q: float) -> float | None:
    present = values.drop_nulls()
    return round(float(present.quantile(q)), 4) if present.len() else None
