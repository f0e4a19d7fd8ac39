"""Tools check: tool calls a trainer would teach wrong, checked against the tools the row declares.

Function-calling data teaches a model to call tools: which name, which arguments, in which
JSON. A call whose arguments are not JSON, name a tool the row does not declare, or break the
tool's JSON Schema teaches exactly the failure people then debug in production; so does a tool
result that answers no call, or two calls sharing one id. Per call this check reports:

- ``bad_arguments``: not valid JSON or not an object (``suggested_value``: the arguments
  rewritten as a JSON object where the intent is plain, e.g. a Python dict literal);
- ``undeclared_tool`` (only where the row declares tools; the closest declared name suggested)
  and ``missing_tool_name``;
- schema violations, validated with the ``jsonschema`` library and named by argument path and
  rule: ``missing_argument`` (required), ``wrong_type`` (a type-coerced value suggested,
  ``"5"`` → ``5``), ``bad_enum`` (the closest allowed value suggested), ``unknown_argument``
  (the schema forbids it), ``schema_violation`` (any other rule: minimum, pattern …), and the
  warning ``undeclared_argument`` (an argument the schema does not name but does not forbid);

and per row ``orphan_tool_result``, ``duplicate_call_id``, ``bad_tools`` (the ``tools`` value is
not a JSON list, or an entry has no name) and ``invalid_schema`` (a declared schema is itself
invalid: a finding, never a crash). Declared tools that no row ever calls are summary data
(``unused_tools``), not findings: distractor tools are often deliberate.

Rows that neither declare tools nor call them are filtered out in polars first and cost nothing;
calls are validated once per distinct (tools, name, arguments), and each distinct schema is
compiled once (see :mod:`dataaudit.features.tool_schema`).
"""

from __future__ import annotations

import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, ReportSection, register_check, result_from_findings
from dataaudit.context import AuditContext

#: Unused declared tools listed in the summary (the total is always given).
MAX_UNUSED_LISTED = 50

KINDS: dict[str, Kind] = {
    "bad_arguments": Kind("error", 0.0, "Write the arguments as one JSON object (suggested_value where it could be repaired)."),
    "missing_tool_name": Kind("error", 0.05, "Give the call the name of a declared tool, or drop it."),
    "undeclared_tool": Kind("error", 0.05, "Call a declared tool (suggested_value: the closest declared name) or declare it."),
    "missing_argument": Kind("error", 0.1, "Add the required argument (suggested_value: its schema default, if any)."),
    "wrong_type": Kind("error", 0.15, "Give the argument the schema's type (suggested_value: the converted value)."),
    "bad_enum": Kind("error", 0.15, "Use one of the allowed values (suggested_value: the closest one)."),
    "unknown_argument": Kind("error", 0.15, "Drop the argument the schema forbids, or rename it (suggested_value)."),
    "schema_violation": Kind("error", 0.2, "Make the argument satisfy the schema rule named in the reason."),
    "undeclared_argument": Kind("warning", 0.4, "Drop the argument or declare it; suggested_value names a close declared one."),
    "orphan_tool_result": Kind("error", 0.1, "Give the tool result the id of the call it answers (suggested_value), or drop it."),
    "duplicate_call_id": Kind("error", 0.1, "Give every call of a turn its own id, so each result answers one call."),
    "bad_tools": Kind("error", 0.05, "Declare the tools as a JSON list of {name, description, parameters}."),
    "invalid_schema": Kind("error", 0.05, "Fix the tool's parameters so they are a valid JSON Schema."),
}


@register_check
class ToolsCheck(Check):
    """Flags tool calls that break the row's declared tools or their JSON Schemas.

    It also flags orphan tool results, duplicate call ids and malformed tool declarations.
    """

    name = "tools"
    description = (
        "Tool calls a trainer would teach wrong: arguments that are not JSON or break the declared JSON Schema, "
        "undeclared tools, tool results that answer no call, duplicate call ids, malformed tool declarations."
    )
    kinds = KINDS
    needs = frozenset()
    _parameter_constraints = {"flag_undeclared_arguments": [bool]}

    def __init__(self, *, flag_undeclared_arguments: bool = True):
        self.flag_undeclared_arguments = flag_undeclared_arguments

    def run(self, ctx: AuditContext) -> CheckResult:
        """Validate every tool call and declaration of the rows that declare, call or answer tools."""
        from dataaudit.features.tool_schema import SchemaCache

        frame = ctx.dataset.frame
        messages = pl.col("messages")
        call_counts = messages.list.eval(pl.element().struct.field("tool_calls").list.len().fill_null(0)).list.sum()
        has_result = messages.list.eval(pl.element().struct.field("role") == "tool").list.any()
        per_row = frame.select(call_counts.fill_null(0).cast(pl.Int64).alias("calls"),
                               (pl.col("tools").is_not_null() | (call_counts > 0) | has_result).alias("involved"))
        subset = frame.select("row", "messages", "tools").filter(per_row.get_column("involved"))
        turns = _turns(subset)
        calls = _calls(turns)
        cache = SchemaCache()
        declared = _Declarations(cache)
        findings = [
            *self._call_findings(calls, declared, cache),
            *_declaration_findings(subset, declared),
            *_duplicate_findings(calls),
            *_orphan_findings(turns, calls),
        ]
        findings.sort(key=lambda item: item[0])
        by_kind = {kind: 0 for kind in KINDS}
        for _, finding in findings:
            by_kind[finding.kind] += 1
        unused, unused_total = _unused_tools(subset, calls, declared)
        styles = calls.group_by("style").len().sort("style")
        summary = {
            "rows_checked": subset.height,
            "rows_with_calls": int((per_row.get_column("calls") > 0).sum()),
            "calls": calls.height,
            "distinct_schemas": len(cache),
            "call_styles": {str(style): int(count) for style, count in styles.iter_rows()},
            "by_kind": by_kind,
            "unused_tool_count": unused_total,
            "unused_tools": unused,
        }
        return result_from_findings(self.name, ctx, [finding for _, finding in findings], summary=summary,
                                    calls=per_row.get_column("calls"))

    @classmethod
    def report_section(cls, result) -> ReportSection | None:
        """Show the calls checked, the call styles, the rows per broken rule and the tools never called."""
        check = ((getattr(result, "summary", None) or {}).get("checks") or {}).get(cls.name)
        if not isinstance(check, dict) or "by_kind" not in check or not check.get("rows_checked"):
            return None
        return ReportSection(template_name="checks/tools.html.j2", context=_report_context(check))

    def _call_findings(self, calls: pl.DataFrame, declared: "_Declarations", cache) -> list[tuple]:
        """Findings for each call, validated once per distinct (tools, name, arguments)."""
        from dataaudit.features.tool_schema import Issue, call_issues, closest_name

        if calls.height == 0:
            return []
        groups = calls.group_by("tools", "name", "arguments", maintain_order=True).agg("index")
        where = calls.select("row", "turn", "call", "name")
        rows, turn_of, call_of = (where.get_column(column).to_list() for column in ("row", "turn", "call"))
        out = []
        for tools, name, arguments, indices in groups.iter_rows():
            tools_of_row = declared.get(tools)
            if not name:
                issues = call_issues(arguments, None, cache) or [
                    Issue("missing_tool_name", "", "name", "the call has no tool name")]
            elif tools_of_row.schemas and name not in tools_of_row.schemas:  # an empty list declares none
                shown = len(tools_of_row.schemas)
                issues = [Issue("undeclared_tool", "", "name",
                                f"{name!r} is not among the row's {shown} declared tool{'s' if shown != 1 else ''}",
                                closest_name(name, list(tools_of_row.schemas))),
                          *call_issues(arguments, None, cache)]
            else:
                issues = call_issues(arguments, tools_of_row.schemas.get(name), cache,
                                     flag_undeclared=self.flag_undeclared_arguments)
            for issue in issues:
                for index in indices:
                    out.append(_call_finding(rows[index], turn_of[index], call_of[index], name, issue))
        return out


class _Declarations:
    """Each distinct ``tools`` text parsed once, with the validity of each declared schema."""

    def __init__(self, cache) -> None:
        self.cache = cache
        self._parsed: dict[str | None, object] = {}

    def get(self, tools: str | None):
        from dataaudit.features.tool_schema import declared_tools

        if tools not in self._parsed:
            self._parsed[tools] = declared_tools(tools)
        return self._parsed[tools]

    def issues(self, tools: str) -> list[tuple[str | None, object]]:
        """``(tool name, Issue)`` for what is wrong with a declaration: its shape, then each invalid schema."""
        from dataaudit.features.tool_schema import Issue

        parsed = self.get(tools)
        found: list[tuple[str | None, object]] = [(None, issue) for issue in parsed.issues]
        for name, schema in parsed.schemas.items():
            if schema is None:
                continue
            compiled = self.cache.validator(schema)
            if isinstance(compiled, Issue):
                found.append((name, compiled))
        return found


def _turns(subset: pl.DataFrame) -> pl.DataFrame:
    """One row per message of the involved rows (role, call id, calls), texts never copied."""
    messages = pl.col("messages")

    def field(name: str) -> pl.Expr:
        return messages.list.eval(pl.element().struct.field(name)).alias(name)

    return (
        subset.select("row", "tools", field("role"), field("tool_call_id"), field("tool_calls"),
                      pl.int_ranges(0, messages.list.len()).alias("turn"))
        .explode("role", "tool_call_id", "tool_calls", "turn")
        .filter(pl.col("turn").is_not_null())
    )


def _calls(turns: pl.DataFrame) -> pl.DataFrame:
    """One row per call: ``index, row, turn, call, id, name, arguments, style, tools``."""
    with_calls = turns.filter(pl.col("tool_calls").list.len().fill_null(0) > 0)
    return (
        with_calls.select("row", "turn", "tools", "tool_calls", pl.int_ranges(0, pl.col("tool_calls").list.len()).alias("call"))
        .explode("tool_calls", "call")
        .unnest("tool_calls")
        .with_row_index("index")
    )


def _call_finding(row: int, turn: int, call: int, name: str | None, issue) -> tuple:
    where = f"argument {issue.path!r}: " if issue.path else ""
    label = f" ({name})" if name else ""
    reason = f"turn {turn}, call {call}{label}: {where}{issue.detail} [rule: {issue.rule}]"
    return ((row, turn, call), _finding(row, issue.kind, reason, issue.suggested_value))


def _finding(row: int, kind: str, reason: str, suggested_value: str | None = None) -> Finding:
    spec = KINDS[kind]
    return Finding(row=int(row), score=spec.score, severity=spec.severity, kind=kind, reason=reason,
                   suggestion=spec.suggestion, suggested_value=suggested_value)


def _declaration_findings(subset: pl.DataFrame, declared: _Declarations) -> list[tuple]:
    """``bad_tools`` and ``invalid_schema`` on every row whose declaration has them."""
    by_text = subset.filter(pl.col("tools").is_not_null()).group_by("tools", maintain_order=True).agg("row")
    out = []
    for tools, rows in by_text.iter_rows():
        for name, issue in declared.issues(tools):
            subject = f"declared tool {name!r}: " if name else "declared tools: "
            for row in rows:
                out.append(((row, -1, -1), _finding(row, issue.kind, f"{subject}{issue.detail}", issue.suggested_value)))
    return out


def _duplicate_findings(calls: pl.DataFrame) -> list[tuple]:
    duplicates = (
        calls.filter(pl.col("id").is_not_null())
        .group_by("row", "turn", "id", maintain_order=True)
        .agg("call")
        .filter(pl.col("call").list.len() > 1)
    )
    return [((row, turn, calls_[0]),
             _finding(row, "duplicate_call_id", f"turn {turn}: call id {call_id!r} is shared by calls {calls_}"))
            for row, turn, call_id, calls_ in duplicates.iter_rows()]


def _orphan_findings(turns: pl.DataFrame, calls: pl.DataFrame) -> list[tuple]:
    """Find tool results that answer no call of the assistant turn before them.

    A result with no id is only an orphan when that turn made no call at all (ShareGPT
    observations carry no ids).
    """
    role, row, turn = pl.col("role"), pl.col("row"), pl.col("turn")
    is_assistant = role == "assistant"
    results = turns.select(
        "row", "turn", "role", "tool_call_id",
        pl.when(is_assistant).then(turn).forward_fill().alias("assistant_turn"),
        (pl.when(is_assistant).then(row).forward_fill() == row).fill_null(False).alias("after_assistant"),
    ).filter((role == "tool") & pl.col("after_assistant"))
    if results.height == 0:
        return []
    ids = calls.group_by("row", "turn").agg(pl.col("id").alias("ids"))
    results = results.join(ids, left_on=["row", "assistant_turn"], right_on=["row", "turn"], how="left")
    has_ids = pl.col("ids").list.eval(pl.element().is_not_null()).list.any().fill_null(False)
    orphan = pl.col("ids").is_null() | (
        pl.col("tool_call_id").is_not_null() & has_ids
        & ~pl.col("ids").list.contains(pl.col("tool_call_id")).fill_null(False)
    )
    results = results.with_columns(
        pl.col("tool_call_id").implode().over("row", "assistant_turn").alias("answered"),
        orphan.alias("orphan"),
    ).filter(pl.col("orphan"))
    out = []
    for record in results.iter_rows(named=True):
        at, answered = record["assistant_turn"], set(record["answered"] or ())
        result_id = record["tool_call_id"]
        subject = f"turn {record['turn']} (tool result{f', id {result_id!r}' if result_id is not None else ''})"
        if record["ids"] is None:
            reason, suggested = f"{subject} answers no call: assistant turn {at} before it made none", None
        else:
            known = [call_id for call_id in record["ids"] if call_id is not None]
            unanswered = [call_id for call_id in known if call_id not in answered]
            reason = f"{subject} answers no call of assistant turn {at} (its call ids: {', '.join(map(repr, known))})"
            suggested = unanswered[0] if len(unanswered) == 1 else None
        out.append(((record["row"], record["turn"], -1), _finding(record["row"], "orphan_tool_result", reason, suggested)))
    return out


def _unused_tools(subset: pl.DataFrame, calls: pl.DataFrame, declared: _Declarations) -> tuple[list[dict], int]:
    """Declared tools no row calls: ``{name, rows, example_row}``, most-declared first (capped)."""
    called = set(calls.get_column("name").drop_nulls().to_list())
    by_text = (subset.filter(pl.col("tools").is_not_null())
               .group_by("tools").agg(pl.len().alias("rows"), pl.col("row").min().alias("first")))
    unused: dict[str, list[int]] = {}
    for tools, count, first in by_text.iter_rows():
        for name in declared.get(tools).schemas:
            if name in called:
                continue
            entry = unused.setdefault(name, [0, first])
            entry[0] += count
            entry[1] = min(entry[1], first)
    ordered = sorted(unused.items(), key=lambda item: (-item[1][0], item[0]))
    listed = [{"name": name, "rows": rows, "example_row": first} for name, (rows, first) in ordered[:MAX_UNUSED_LISTED]]
    return listed, len(unused)


def _report_context(check: dict) -> dict:
    kinds = [{"kind": kind, "rows": count, "severity": KINDS[kind].severity, "suggestion": KINDS[kind].suggestion}
             for kind, count in (check.get("by_kind") or {}).items() if kind in KINDS and count]
    return {
        "kinds": kinds,
        "checked": check.get("rows_checked", 0),
        "with_calls": check.get("rows_with_calls", 0),
        "calls": check.get("calls", 0),
        "schemas": check.get("distinct_schemas", 0),
        "styles": check.get("call_styles") or {},
        "unused": (check.get("unused_tools") or [])[:20],
        "unused_total": check.get("unused_tool_count", 0),
    }
