"""Turns check: conversations whose structure a chat template rejects or silently mis-trains on.

After an optional leading system message, user and assistant turns should alternate and the
conversation should end on an assistant turn (the text the row trains). Tool (function)
messages may sit between an assistant turn and the next assistant turn, as in OpenAI's tool
calls. Public SFT sets ship every violation: "roles must alternate" errors on UltraFeedback,
user/assistant/user/user in smoltalk2. The loader keeps such conversations as rows, so they
are flagged here, exported with reasons, and fixed.

Every rule is a polars expression over the exploded turns (one row per message), so 100k
conversations take well under a second. One finding per (row, kind); its ``reason`` names the
turn indices (0-based, as in the record's list of messages). Only rows of the chat formats
(:data:`CHAT_FORMATS`) are checked; in prompt-only data (no assistant turn anywhere, such as a
production sample) a missing final reply is expected and not flagged.
"""

from __future__ import annotations

import polars as pl

from dataaudit.checks.base import (
    Check,
    CheckResult,
    Finding,
    Kind,
    ReportSection,
    register_check,
    result_from_findings,
)
from dataaudit.context import AuditContext

KNOWN_ROLES = ("system", "user", "assistant", "tool")
#: Formats whose records spell out their turns and roles. The others (Alpaca, prompt/completion,
#: MT-Bench-style user turns...) are built into well-formed messages by the loader, and their
#: empty fields are the quality check's to flag.
CHAT_FORMATS = ("openai", "sharegpt")
#: One letter per role in ``turns_pattern`` (``?`` for a role no template knows).
ROLE_LETTERS = {"system": "S", "user": "U", "assistant": "A", "tool": "T"}
MAX_TURNS_SHOWN = 5


KINDS: dict[str, Kind] = {
    "bad_role": Kind("error", 0.05, "Rename the role to system, user, assistant or tool, or drop the turn."),
    "assistant_first": Kind(
        "error", 0.1, "Add the user turn the assistant answers, or drop the leading assistant turn."
    ),
    "system_not_first": Kind(
        "error", 0.1, "Move the system message to the start, or merge it into the nearest user turn."
    ),
    "consecutive_roles": Kind(
        "error", 0.1, "Merge the consecutive turns of one role, or add the missing turn between them."
    ),
    "role_order": Kind(
        "error", 0.1, "A tool message must follow the assistant turn that called the tool; reorder or drop it."
    ),
    "empty_turn": Kind(
        "warning", 0.3, "Fill in or drop the empty turn; an empty assistant turn trains the model to say nothing."
    ),
    "no_final_assistant": Kind(
        "warning", 0.3, "Add the assistant reply to the last turn, or drop the unanswered turns."
    ),
}


@register_check
class TurnsCheck(Check):
    """Flags conversations whose roles are out of order, misplaced, unknown or empty, or that end without a reply."""

    name = "turns"
    description = (
        "Conversations with a broken structure: roles out of order, an assistant or system turn out of place, "
        "empty turns, or no final assistant reply."
    )
    kinds = KINDS
    needs = frozenset()
    _parameter_constraints = {"allow_tools": [bool]}

    def __init__(self, *, allow_tools: bool = True):
        self.allow_tools = allow_tools

    def run(self, ctx: AuditContext) -> CheckResult:
        """Check the role order of every chat row; prompt-only data is not expected to end with a reply."""
        frame = ctx.dataset.frame
        chats = frame.filter(pl.col("source_format").is_in(CHAT_FORMATS))
        turns = flagged_turns(chats, allow_tools=self.allow_tools)
        has_assistant = pl.col("messages").list.eval(pl.element().struct.field("role") == "assistant").list.any()
        prompt_only = not (chats.height and bool(chats.select(has_assistant.any()).item()))
        per_kind = (
            turns.filter(
                pl.col("kind").is_not_null() & ~(pl.lit(prompt_only) & (pl.col("kind") == "no_final_assistant"))
            )
            .group_by("row", "kind", maintain_order=True)
            .agg("turn", "role", "previous_turn", "any_assistant")
            .sort("row", "kind")
        )
        findings = [_finding(record) for record in per_kind.iter_rows(named=True)]
        by_kind = per_kind.group_by("kind").len()
        counts = dict(zip(by_kind.get_column("kind").to_list(), by_kind.get_column("len").to_list()))
        stats = _patterns(frame)
        summary = {
            "rows_checked": chats.height,
            "prompt_only": prompt_only,
            "by_kind": {kind: int(counts.get(kind, 0)) for kind in KINDS},
            "multi_turn_rows": int((stats.get_column("count") > 2).sum()),
            "rows_with_tools": int(stats.get_column("pattern").str.contains("T").sum()),
        }
        return result_from_findings(
            self.name,
            ctx,
            findings,
            summary=summary,
            count=stats.get_column("count"),
            pattern=stats.get_column("pattern"),
        )

    @classmethod
    def report_section(cls, result) -> ReportSection | None:
        """Show the rows per broken rule, with their severities and fixes."""
        check = ((getattr(result, "summary", None) or {}).get("checks") or {}).get(cls.name)
        if not isinstance(check, dict) or "by_kind" not in check:
            return None
        kinds = [
            {
                "kind": kind,
                "rows": count,
                "severity": KINDS[kind].severity if kind in KINDS else "",
                "suggestion": KINDS[kind].suggestion if kind in KINDS else "",
            }
            for kind, count in check["by_kind"].items()
        ]
        return ReportSection(
            template_name="checks/turns.html.j2",
            context={
                "kinds": kinds,
                "checked": check.get("rows_checked", 0),
                "multi_turn": check.get("multi_turn_rows", 0),
                "tools": check.get("rows_with_tools", 0),
            },
        )



def flagged_turns(frame: pl.DataFrame, *, allow_tools: bool = True) -> pl.DataFrame:
    """List the turns that break a rule, one row per (turn, broken rule).

    Columns: ``row, turn, role, kind, previous_turn, any_assistant``; turns that break no rule do
    not appear.
    """
    allowed = list(KNOWN_ROLES if allow_tools else KNOWN_ROLES[:3])
    roles = pl.col("messages").list.eval(pl.element().struct.field("role"))
    # Only roles and an is-blank flag are exploded: the turn texts are never copied.
    # A turn that only calls a tool (empty text, some calls) says something: it is not empty.
    calls = pl.element().struct.field("tool_calls").list.len().fill_null(0)
    blank = pl.col("messages").list.eval(
        pl.element().struct.field("content").fill_null("").str.contains(r"^\s*$") & (calls == 0))
    turns = (
        frame.select(
            "row",
            roles.alias("role"),
            blank.alias("blank"),
            pl.int_ranges(0, pl.col("messages").list.len()).alias("turn"),
            (pl.col("messages").list.len() - 1).alias("last_turn"),
            roles.list.contains("assistant").alias("any_assistant"),
        )
        .explode("role", "blank", "turn")
        .filter(pl.col("turn").is_not_null())
    )
    # Turns are contiguous per row, so "the previous non-system turn" is a shift and a forward
    # fill over the whole frame, kept only where it comes from the same row (no window per row).
    role, row = pl.col("role"), pl.col("row")
    non_system = role != "system"
    same_row = pl.when(non_system).then(row).shift(1).forward_fill() == row
    previous_role = pl.when(same_row).then(pl.when(non_system).then(role).shift(1).forward_fill())
    previous_turn = pl.when(same_row).then(pl.when(non_system).then(pl.col("turn")).shift(1).forward_fill())
    first_spoken = non_system & ~same_row.fill_null(False)
    rules = {
        "bad_role": ~role.is_in(allowed),
        "assistant_first": first_spoken & (role == "assistant"),
        "system_not_first": (role == "system") & (pl.col("turn") > 0),
        "consecutive_roles": role.is_in(["user", "assistant"]) & (role == previous_role),
        "role_order": (role == "tool")
        & role.is_in(allowed)
        & ~previous_role.is_in(["assistant", "tool"]).fill_null(False),
        "empty_turn": pl.col("blank"),
        "no_final_assistant": (pl.col("turn") == pl.col("last_turn")) & (role != "assistant"),
    }
    return (
        turns.with_columns(
            previous_turn.alias("previous_turn"),
            pl.concat_list([pl.when(rule).then(pl.lit(kind)) for kind, rule in rules.items()])
            .list.drop_nulls()
            .alias("kind"),
        )
        .filter(pl.col("kind").list.len() > 0)
        .explode("kind")
        .select("row", "turn", "role", "kind", "previous_turn", "any_assistant")
    )


def _patterns(frame: pl.DataFrame) -> pl.DataFrame:
    """Per row: the number of turns and the role letters (``SUAUA``), for a glance in the table."""
    letters = pl.element().struct.field("role").replace_strict(ROLE_LETTERS, default="?", return_dtype=pl.String)
    return frame.select(
        pl.col("messages").list.len().cast(pl.Int64).alias("count"),
        pl.col("messages").list.eval(letters).list.join("").alias("pattern"),
    )


def _shown_turns(turns: list[int], roles: list[str]) -> str:
    shown = [f"{turn} ({role})" for turn, role in zip(turns[:MAX_TURNS_SHOWN], roles)]
    more = f" and {len(turns) - MAX_TURNS_SHOWN} more" if len(turns) > MAX_TURNS_SHOWN else ""
    return ", ".join(shown) + more


def _finding(record: dict) -> Finding:
    kind, turns, roles = record["kind"], record["turn"], record["role"]
    first, plural = turns[0], len(turns) > 1
    severity = KINDS[kind].severity
    if kind == "bad_role":
        reason = (
            f"turn{'s' if plural else ''} {_shown_turns(turns, roles)} ha{'ve' if plural else 's'} a role no chat "
            f"template knows (expected one of {', '.join(KNOWN_ROLES)})"
        )
    elif kind == "assistant_first":
        reason = f"turn {first} is an assistant turn with no user turn before it"
    elif kind == "system_not_first":
        reason = (
            f"system message at turn{'s' if plural else ''} {', '.join(map(str, turns[:MAX_TURNS_SHOWN]))} after the "
            "conversation started; most chat templates accept a system message only as the first turn"
        )
    elif kind == "consecutive_roles":
        pairs = [
            f"{previous} and {turn} ({role})" for previous, turn, role in zip(record["previous_turn"], turns, roles)
        ][:MAX_TURNS_SHOWN]
        reason = f"two turns of one role in a row: turns {'; '.join(pairs)}; user and assistant should alternate"
    elif kind == "role_order":
        reason = f"tool message at turn {first} does not follow an assistant turn that called a tool"
    elif kind == "empty_turn":
        reason = f"empty or whitespace-only turn{'s' if plural else ''}: {_shown_turns(turns, roles)}"
    else:  # no_final_assistant
        if record["any_assistant"][0]:
            reason = f"the conversation ends on turn {first} ({roles[0]}) with no assistant reply after it"
        else:
            reason = (
                f"the conversation has no assistant turn (it ends on turn {first}, {roles[0]}): the row trains nothing"
            )
            severity = "error"
    spec = KINDS[kind]
    return Finding(
        row=int(record["row"]),
        score=spec.score if severity == spec.severity else 0.05,
        severity=severity,
        kind=kind,
        reason=reason,
        suggestion=spec.suggestion,
    )
