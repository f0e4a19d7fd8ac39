"""Rich renderings for the CLI. The library returns data; only this module draws it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from dataaudit.profile import DatasetProfile


def render_profile(console: Console, profile: DatasetProfile) -> None:
    table = Table(title=f"{profile.path}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("format", f"{profile.format} ({profile.container})")
    table.add_row("records", f"{profile.records:,}")
    table.add_row("bad lines", f"{profile.bad_lines:,}")
    if profile.blank_lines:
        table.add_row("blank lines", f"{profile.blank_lines:,}")
    p = profile.prompt_tokens
    table.add_row("prompt tokens", f"mean {p.mean:g} · p50 {p.p50:g} · p95 {p.p95:g} · max {p.max:,} · empty {p.empty:,}")
    if profile.response_tokens is not None:
        r = profile.response_tokens
        table.add_row("response tokens", f"mean {r.mean:g} · p50 {r.p50:g} · p95 {r.p95:g} · max {r.max:,} · empty {r.empty:,}")
    else:
        table.add_row("response tokens", "no responses (prompts only)")
    table.add_row("user turns / record", ", ".join(f"{turns}: {count:,}" for turns, count in profile.turns.items()))
    table.add_row("with system prompt", f"{profile.with_system:,}")
    if profile.distinct_labels:
        shown = ", ".join(f"{label} ({count:,})" for label, count in profile.labels.items())
        more = profile.distinct_labels - len(profile.labels)
        table.add_row("labels", f"{profile.distinct_labels:,} distinct: {shown}" + (f", … {more} more" if more > 0 else ""))
    for bad in profile.first_bad_lines:
        table.add_row("bad line", f"line {bad['line']}: {bad['reason']}")
    console.print(table)
