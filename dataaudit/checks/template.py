"""Template check: the rows as the trainer renders them through the target chat template.

A trainer does not read a row's fields: it renders them through the tokenizer's chat template
and learns from the assistant tokens. What goes wrong there is invisible in the data itself:

- ``special_token_in_text`` (per row): a control token of the tokenizer (``<|im_end|>``,
  ``<|endoftext|>`` … — whatever the given tokenizer's special tokens are) written inside a
  turn's text, which the tokenizer turns into the real control token; an error where the token
  frames the conversation (BOS, EOS, end of turn, or written by the template), a warning for the
  tokenizer's other special tokens (SmolLM2's ``<filename>`` in a shell usage line). The row
  columns ``template_token``, ``template_token_turn`` and ``template_token_offset`` give the first;
- ``dropped_system`` / ``dropped_tool_call`` / ``dropped_tool_result`` / ``dropped_tools``
  (warning, stated once per kind, on a row of the largest affected structure): content the
  template silently leaves out (templates without tool support drop calls and tools);
- ``eos_not_trained`` (error, stated once): the trained assistant span (the template's
  ``{% generation %}`` marks where it has them, else each assistant turn's rendered span) does
  not end with the end-of-turn or EOS token, so the model never learns to stop;
- ``double_bos`` and ``default_system_prompt`` (info, in the summary and the report section, not
  findings: they are facts about the template that no row is at fault for, and a finding would
  flag a clean row): the template writes BOS and tokenizing adds another; the template injects
  a system prompt (the summary holds its text) into rows without one.

The once-per-dataset faults are findings on one representative row, so the overview counts them
and ``--fail-on error`` fails on ``eos_not_trained``; the summary holds the figures.

Cheap at any size, so it runs by default: the control-token scan is one Aho-Corasick pass over
the exploded turns in polars, and the template is rendered once per distinct row structure
(:func:`~dataaudit.features.chat_template.row_shapes`, at most ``max_shapes``, most frequent
first) on a probe of that structure's first row whose texts are unique markers, so what the
render keeps is read exactly. The tokenizer is the length check's (``tokenizer``, default SmolLM2's).
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, ReportSection, register_check, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.params import Interval

logger = logging.getLogger(__name__)

#: How each dropped content kind is named for people, and its finding kind.
_DROPPED = {
    "system": ("system prompts", "dropped_system"),
    "tool_call": ("tool calls", "dropped_tool_call"),
    "tool_result": ("tool results", "dropped_tool_result"),
    "tools": ("the declared tools", "dropped_tools"),
}
_DROPPED_SUGGESTION = "Train with a template that renders this content, or move it into the text the template keeps."


@register_check
class TemplateCheck(Check):
    """Renders each row structure through the target chat template and scans the text for control tokens."""

    name = "template"
    description = (
        "Rows as the trainer renders them through the chat template: control tokens written in text, content the "
        "template drops, an end-of-turn token never trained, a doubled BOS, an injected system prompt."
    )
    kinds = {
        "special_token_in_text": Kind("error", 0.0, "Remove the token from the text, or escape it (for example break "
                                                    "it with a zero-width space)."),
        "eos_not_trained": Kind("error", 0.0, "Put the end-of-turn token inside the trained span (inside "
                                              "{% generation %}), or fix the template so an assistant turn ends with it."),
        **{kind: Kind("warning", 0.3, _DROPPED_SUGGESTION) for _, kind in _DROPPED.values()},
    }
    needs = frozenset()
    _parameter_constraints = {"tokenizer": [str, None], "max_shapes": [Interval(int, 1, None)]}

    def __init__(self, *, tokenizer: str | None = None, max_shapes: int = 500):
        self.tokenizer = tokenizer
        self.max_shapes = max_shapes

    def prepare(self, ctx: AuditContext) -> None:
        """Load the chat template now: a tokenizer that does not load is a usage error before anything is embedded."""
        from dataaudit.features.chat_template import load_chat_template

        with ctx.stage("template_tokenizer_load"):
            self.template_ = load_chat_template(self.tokenizer)
            self.template_name_ = self.tokenizer

    def run(self, ctx: AuditContext) -> CheckResult:
        """Scan the text for the tokenizer's control tokens; render each row shape through its chat template, if any.

        Prepares itself when ``prepare`` did not run or the tokenizer changed since.
        """
        from dataaudit.features.chat_template import control_token_hits

        if getattr(self, "template_name_", object()) != self.tokenizer:  # unprepared, or set_params since
            self.prepare(ctx)
        template = self.template_
        frame = ctx.dataset.frame
        rows = frame.get_column("row").to_list()
        with ctx.stage("template_scan"):
            hits = control_token_hits(frame, template.control_tokens)
        structural = template.structural_tokens
        findings = [self._token_finding(rows[index], frame, index, turn, field, token, offset, count, structural)
                    for index, turn, field, token, offset, count in hits.iter_rows()]
        summary: dict[str, Any] = {
            "tokenizer": template.name,
            "chat_template": bool(template.template),
            "control_tokens": len(template.control_tokens),
            "rows_with_control_tokens": hits.height,
        }
        if template.template:
            with ctx.stage("template_render"):
                rendered = _render_shapes(template, frame, self.max_shapes)
            findings += _dataset_findings(template, rendered, rows)
            summary.update(rendered.summary(template))
        columns = _token_columns(frame.height, hits)
        return result_from_findings(self.name, ctx, findings, summary=summary, **columns)

    @staticmethod
    def _token_finding(row: int, frame: pl.DataFrame, index: int, turn: int, field: str, token: str, offset: int,
                       count: int, structural: frozenset[str]) -> Finding:
        role = frame.get_column("messages")[index][turn]["role"]
        where = "text" if field == "content" else ("reasoning" if field == "reasoning" else "tool call")
        more = f" ({count} control tokens in the row)" if count > 1 else ""
        frames = token in structural
        effect = ("so the trainer sees a turn or document boundary there" if frames else
                  "an id the chat model never otherwise sees")
        return Finding(
            row=row,
            score=0.0 if frames else 0.2,
            severity="error" if frames else "warning",
            kind="special_token_in_text",
            reason=(f"{token!r} is written in the {where} of turn {turn} ({role}) at character {offset}{more}: the "
                    f"tokenizer reads it as its control token, not as text, {effect}"),
            suggestion=TemplateCheck.kinds["special_token_in_text"].suggestion,
            suggested_value=None,
        )

    @classmethod
    def report_section(cls, result) -> ReportSection | None:
        """Show the tokenizer, its chat template and what rendering the row shapes found."""
        summary = getattr(result, "summary", None) or {}
        check = (summary.get("checks") or {}).get(cls.name) if isinstance(summary, dict) else None
        if not isinstance(check, dict) or "tokenizer" not in check:
            return None
        return ReportSection(template_name="checks/template.html.j2", context={"check": check})


class _Rendered:
    """What rendering each row structure found, gathered for the once-per-dataset findings."""

    def __init__(self):
        self.shapes = 0
        self.rendered_rows = 0
        self.total_rows = 0
        self.dropped: dict[str, list[tuple[int, int, list[str]]]] = {}
        self.unended: list[tuple[int, int, str, str]] = []
        self.errors: list[dict[str, Any]] = []
        self.span_source = "none"
        self.double_bos: int | None = None
        self.injected: tuple[int, str] | None = None
        self.rows_without_system = 0

    def summary(self, template) -> dict[str, Any]:
        return {
            "shapes": self.shapes,
            "rows_rendered": self.rendered_rows,
            "rows_not_rendered": self.total_rows - self.rendered_rows,
            "dropped": {kind: sum(count for _, count, _ in found) for kind, found in self.dropped.items()},
            "trained_span": {"source": self.span_source, "end_tokens": list(template.end_tokens),
                             "rows_not_ending_with_end_token": sum(count for _, count, _, _ in self.unended)},
            "double_bos": self.double_bos is not None,
            "default_system_prompt": self.injected[1] if self.injected else None,
            "rows_without_system": self.rows_without_system,
            "template_errors": self.errors[:20],
        }


def _render_shapes(template, frame: pl.DataFrame, max_shapes: int) -> _Rendered:
    """Render the first row of each structure (most frequent first), as a marker probe."""
    from dataaudit.features.chat_template import (
        doubled_bos,
        dropped_content,
        injected_system,
        probe,
        row_shapes,
        template_tools,
        trained_spans,
    )

    found = _Rendered()
    groups = (
        pl.DataFrame({"shape": row_shapes(frame)}).with_row_index("index")
        .group_by("shape").agg(pl.col("index").first().alias("first"), pl.len().alias("rows"))
        .sort(["rows", "first"], descending=[True, False])
    )
    found.shapes, found.total_rows = groups.height, frame.height
    messages = frame.get_column("messages")
    tools = frame.get_column("tools") if "tools" in frame.columns else pl.Series([None] * frame.height, dtype=pl.String)
    found.span_source = "generation" if template.marks_generation else "turn"
    for shape, first, count in groups.head(max_shapes).iter_rows():
        row_messages = messages[first].to_list() if hasattr(messages[first], "to_list") else messages[first]
        row_probe = probe(row_messages, template_tools(tools[first]))
        has_system = bool(row_messages) and row_messages[0]["role"] == "system"
        found.rows_without_system += 0 if has_system else count
        try:
            rendered = template.render(row_probe.messages, tools=row_probe.tools)
            spans = trained_spans(template, row_probe, rendered)
            injected = injected_system(template, row_probe) if found.injected is None and not has_system else None
        except Exception as error:  # noqa: BLE001 - a template that refuses a structure is reported, not fatal
            found.errors.append({"shape": shape, "rows": int(count), "error": f"{type(error).__name__}: {error}"[:300]})
            continue
        found.rendered_rows += count
        for kind, what in dropped_content(row_probe, rendered.text).items():
            found.dropped.setdefault(kind, []).append((first, count, what))
        bad = next((span for span in spans if not span.ok), None)
        if bad is not None:
            found.unended.append((first, count, bad.text.rstrip()[-40:], bad.source))
        if found.double_bos is None and doubled_bos(template, rendered.text):
            found.double_bos = first
        if injected is not None:
            found.injected = (first, injected)
    return found


def _dataset_findings(template, found: _Rendered, rows: list[int]) -> list[Finding]:
    """The template's faults, each stated once on a row of the largest structure it affects."""
    findings = []
    for kind, entries in found.dropped.items():
        label, finding_kind = _DROPPED[kind]
        first, _, what = entries[0]
        affected = sum(count for _, count, _ in entries)
        findings.append(Finding(
            row=rows[first], score=0.3, severity="warning", kind=finding_kind,
            reason=(f"the chat template ({template.name}) leaves {label} out of the rendered text in {affected:,} "
                    f"row(s) of {len(entries)} structure(s); in this row: {', '.join(what[:4])}"),
            suggestion=_DROPPED_SUGGESTION,
            suggested_value=kind,
        ))
    if found.unended:
        first, _, tail, source = found.unended[0]
        affected = sum(count for _, count, _, _ in found.unended)
        where = "the template's {% generation %} span" if source == "generation" else "the rendered assistant turn"
        ends = ", ".join(repr(token) for token in template.end_tokens) or "no end-of-turn or EOS token"
        findings.append(Finding(
            row=rows[first], score=0.0, severity="error", kind="eos_not_trained",
            reason=(f"in {affected:,} row(s) {where} ends with {tail!r}, not with {ends}: the trained tokens never "
                    "include the end of the turn, so the model does not learn to stop"),
            suggestion=TemplateCheck.kinds["eos_not_trained"].suggestion,
            suggested_value=template.end_tokens[0] if template.end_tokens else None,
        ))
    return findings


def _token_columns(height: int, hits: pl.DataFrame) -> dict[str, pl.Series]:
    """The first control token of each row and where it is (null where there is none)."""
    base = pl.DataFrame({"index": pl.Series(range(height), dtype=pl.UInt32)})
    joined = base.join(hits, on="index", how="left").sort("index")
    return {"token": joined.get_column("token"), "token_turn": joined.get_column("turn"),
            "token_offset": joined.get_column("offset")}
