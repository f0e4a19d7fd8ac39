"""Rich renderings for the CLI. The library returns data; only this module draws it.

Every string that comes from the data (paths, labels, keys, texts) goes through :func:`plain`:
rich would otherwise read ``[red]`` in a label as markup (or crash on ``[/x]``), and a
terminal would obey escape sequences hidden in a prompt.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dataaudit.profile import DatasetProfile

# C0/C1 controls except tab and newline, plus the bidi overrides that can reorder what is shown.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


#: Colour per fine-tune verdict value (:class:`~dataaudit.finetune.stats.Verdict`); others are yellow.
VERDICT_STYLES = {"confirmed": "green", "not confirmed": "red"}


def printable(value: Any) -> str:
    """``value`` as text a terminal shows as-is: control characters appear as ``\\x1b``-style escapes."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), str(value))


def plain(value: Any) -> str:
    """Data text for a rich renderable: printable, and any ``[...]`` shown, not read as markup."""
    return escape(printable(value))


def render_profile(console: Console, profile: DatasetProfile) -> None:
    table = Table(title=plain(profile.path), show_header=False, title_justify="left")
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
    s = profile.structure
    if s.get("rows_with_tools") or s.get("rows_with_calls") or s.get("tool_results"):
        styles = ", ".join(f"{key.removeprefix('calls_')} {count:,}" for key, count in s.items() if key.startswith("calls_"))
        table.add_row("tool calls", f"{s['calls']:,} in {s['rows_with_calls']:,} rows ({styles or 'none'}) · "
                                    f"{s['tool_results']:,} tool results · tools declared in {s['rows_with_tools']:,} rows")
    if s.get("rows_with_reasoning"):
        table.add_row("reasoning traces", f"{s['rows_with_reasoning']:,} rows")
    if profile.distinct_labels:
        shown = ", ".join(f"{plain(label)} ({count:,})" for label, count in profile.labels.items())
        more = profile.distinct_labels - len(profile.labels)
        table.add_row("labels", f"{profile.distinct_labels:,} distinct: {shown}" + (f", … {more} more" if more > 0 else ""))
    for bad in profile.first_bad_lines:
        table.add_row("bad line", f"line {bad['line']}: {plain(bad['reason'])}")
    console.print(table)


class RichProgress:
    """A :class:`~dataaudit.progress.Progress` drawn as rich progress bars with ETA."""

    def __init__(self, *, console: Console):
        self.console = console

    def task(self, description: str, total: int | None = None):
        from contextlib import contextmanager

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        @contextmanager
        def running():
            columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
            with Progress(*columns, console=self.console, transient=True) as bars:
                task_id = bars.add_task(description, total=total)

                class _Task:
                    def advance(self, amount: int = 1) -> None:
                        bars.advance(task_id, amount)

                yield _Task()

        return running()


def render_audit(console: Console, result, *, out_dir: str | None = None, top_clusters: int = 8) -> None:
    """Counts per check and severity, the clusters with most problems, coverage headline."""
    import polars as pl

    summary = result.summary
    dataset = summary["dataset"]
    clusters = summary["clusters"]
    for name, error in result.failed_checks.items():  # first: the rest reads as complete otherwise
        console.print(f"[bold red]check {plain(name)} failed: {plain(error)}[/bold red] — its findings are missing")
    console.print(
        f"[bold]{plain(dataset['path'])}[/bold]: {dataset['records']:,} records ({plain(dataset['format'])}), "
        f"{clusters['count']} clusters, {clusters['noise_share']:.1%} unclustered, "
        f"{summary['flagged_rows']:,} rows flagged"
    )
    table = Table(title="Findings", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    for severity in ("error", "warning", "info"):
        table.add_column(severity, justify="right")
    by = {}
    if result.findings.height:
        for check, severity, count in result.findings.group_by(["check", "severity"]).len().iter_rows():
            by[(check, severity)] = count
    failed_first = sorted(summary["checks"].items(), key=lambda item: item[0] not in result.failed_checks)
    for name, info in failed_first:
        status = "[green]ok[/green]" if info["status"] == "ok" else f"[red]failed[/red]: {plain(info.get('error', ''))}"
        if info.get("skipped"):
            status = f"[yellow]skipped[/yellow]: {plain(info['skipped'])}"
        table.add_row(plain(name), status, *(f"{by.get((name, s), 0):,}" for s in ("error", "warning", "info")))
    console.print(table)

    if result.findings.height and result.clusters.height:
        per_cluster = (
            result.findings.filter(pl.col("cluster") >= 0)
            .group_by("cluster").agg(pl.len().alias("findings"), pl.col("check").unique().sort().alias("checks"))
            .join(result.clusters.select("cluster", "label", "size"), on="cluster", how="left")
            .with_columns((pl.col("findings") / pl.col("size")).alias("rate"))
            .sort(["findings", "cluster"], descending=[True, False]).head(top_clusters)
        )
        if per_cluster.height:
            worst = Table(title="Clusters with most findings", title_justify="left")
            for column in ("cluster", "label", "size", "findings", "checks"):
                worst.add_column(column, justify="right" if column in ("cluster", "size", "findings") else "left")
            for row in per_cluster.iter_rows(named=True):
                worst.add_row(str(row["cluster"]), plain(row["label"]), f"{row['size']:,}",
                              f"{row['findings']:,} ({row['rate']:.0%})", plain(", ".join(row["checks"])))
            console.print(worst)

    coverage = summary.get("coverage")
    if coverage:
        console.print(f"[bold]Coverage:[/bold] {plain(coverage_headline(coverage))}")
        if result.gaps.height:
            gaps = Table(title="Largest coverage gaps", title_justify="left")
            for column in ("topic", "rows", "share", "collect", "example"):
                gaps.add_column(column, justify="right" if column in ("rows", "share", "collect") else "left")
            capped = False
            for row in result.gaps.head(5).iter_rows(named=True):
                example = (row.get("representatives") or [""])[0]
                ceiling = row.get("collect_basis") == "ceiling"  # absent from audits saved before it existed
                capped |= ceiling
                gaps.add_row(plain(row["label"]), f"{row['size']:,}", f"{row['share_of_production']:.1%}",
                             f"{row['collect']:,}" + ("+" if ceiling else ""), plain(example[:70].replace("\n", " ")))
            console.print(gaps)
            if capped:
                console.print("[dim]+ capped at the largest training cluster's size; the share of traffic asks for more[/dim]")
    if out_dir is not None:
        report = summary.get("report_path")
        console.print(f"Results in [bold]{plain(out_dir)}[/bold]" + (f" — open [bold]{plain(report)}[/bold]" if report else ""))


def coverage_headline(coverage: dict) -> str:
    """One sentence: how much production traffic training misses, and the evaluation gap.

    Parts that were not computed (``None`` in the summary, e.g. drift with under two
    training rows) are left out rather than formatted.
    """
    parts = []
    if _is_number(coverage.get("gap_share")):
        parts.append(
            f"{coverage['gap_share']:.1%} of {coverage.get('production_rows') or 0:,} production prompts are not covered "
            f"({coverage.get('gap_clusters') or 0} gap topics, collect about {coverage.get('examples_to_collect') or 0:,} examples)"
        )
    drift = coverage.get("drift") or {}
    if _is_number(drift.get("auc")):
        parts.append(f"drift AUC {drift['auc']:.2f} — {drift.get('interpretation', '')}")
    evaluation = coverage.get("evaluation_gap") or {}
    held_out = (evaluation.get("held_out") or {}).get("gap_share")
    production = (evaluation.get("production") or {}).get("gap_share")
    if _is_number(held_out) and _is_number(production):
        parts.append(f"a held-out split is {held_out:.1%} uncovered vs production {production:.1%}")
    return "; ".join(parts) or "not computed"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def render_finetune(console: Console, result, *, report_path: str | None = None) -> None:
    """Experiments side by side, then the confirmation table with its verdicts."""
    summary = result.summary
    backend = summary["backend"]
    metric = backend["metric"]
    rows = summary["rows"]
    console.print(
        f"[bold]Reference fine-tune[/bold] ({backend['backend']} on {backend.get('trained_on', 'cpu')}, {metric}): "
        f"{rows['train']:,} training rows "
        f"({rows['train_cleaned']:,} after cleaning), {rows['heldout']:,} held out, {rows['production']:,} production"
    )
    experiments = Table(title="Experiments", title_justify="left")
    for column in ("experiment", "train rows", "seconds", f"held-out {metric}", f"production {metric}"):
        experiments.add_column(column, justify="left" if column == "experiment" else "right")
    for name, info in summary["experiments"].items():
        held, prod = info["heldout"].get(metric), info["production"].get(metric)
        experiments.add_row(name, f"{info.get('train_rows', 0):,}" if "train_rows" in info else "—",
                            f"{info['seconds']:.0f}" if "seconds" in info else "—",
                            "—" if held is None else f"{held:.4g}", "—" if prod is None else f"{prod:.4g}")
    console.print(experiments)
    table = Table(title="Confirmation", title_justify="left", show_lines=True)
    for column in ("finding", "prediction", "measurement", "verdict"):
        table.add_column(column, overflow="fold")
    for record in summary["confirmation"]:
        verdict = str(record["verdict"])
        style = VERDICT_STYLES.get(verdict, "yellow")
        note = f" — {record['verdict_note']}" if record.get("verdict_note") else ""
        table.add_row(plain(record["finding"]), plain(record["prediction"]),
                      plain(record["measurement"]), f"[{style}]{plain(verdict)}[/{style}]{plain(note)}")
    console.print(table)
    if report_path is not None:
        console.print(f"Report with the fine-tune section: [bold]{plain(report_path)}[/bold]")
