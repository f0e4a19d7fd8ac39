"""Terminal rendering of a selection: what was kept per cluster against the pool and production."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from dataaudit.report.terminal import plain


def render_selection(console: Console, selection, *, out: str, table_path: str, counts: dict[str, int],
                     max_clusters: int = 20) -> None:
    """One line of totals, then the largest clusters' pool, quota, picks and production share."""
    summary = selection.summary
    console.print(
        f"[bold]Selected {counts['selected']:,}[/bold] of {summary['pool']:,} pool rows with "
        f"[bold]{plain(summary['strategy'])}[/bold] ({summary['flagged']:,} flagged rows left out, "
        f"{counts['not_selected']:,} not selected in all) -> {plain(out)}; table: {plain(table_path)}"
    )
    clusters = selection.clusters.sort(["pool", "cluster"], descending=[True, False]).head(max_clusters)
    table = Table(title="Per cluster (largest first)", title_justify="left")
    for column in ("cluster", "pool", "pool share", "production share", "quota", "selected"):
        table.add_column(column, justify="right")
    for row in clusters.iter_rows(named=True):
        production = row["production_share"]
        table.add_row(str(row["cluster"]), f"{row['pool']:,}", f"{row['pool_share']:.1%}",
                      "—" if production is None or math.isnan(production) else f"{production:.1%}",
                      f"{row['quota']:,}" if summary["quotas_bind"] else "—", f"{row['selected']:,}")
    console.print(table)
    if selection.clusters.height > max_clusters:
        console.print(f"... and {selection.clusters.height - max_clusters} smaller cluster(s) in {plain(table_path)}")


def render_verification(console: Console, result, *, path: str) -> None:
    """The three runs, then one line per comparison and metric with its interval and verdict."""
    summary = result.summary
    console.print(f"[bold]Selection check[/bold] ({plain(summary['backend'])}, {summary['epochs']} epoch(s), seed "
                  f"{summary['seed']}): {summary['selected']:,} selected of a {summary['pool']:,}-row pool; "
                  f"{summary['heldout']:,} held out, {summary['production']:,} production rows")
    table = Table(title="selected − other (paired, 95% bootstrap interval)", title_justify="left")
    for column in ("comparison", "set", "metric", "effect", "95% interval", "rows", "verdict"):
        table.add_column(column, justify="left" if column in ("comparison", "set", "metric", "verdict") else "right")
    for row in result.comparisons.iter_rows(named=True):
        verdict = row["verdict"]
        if row["rows_factor_needed"] is not None:
            verdict += f" (needs ~{row['rows_factor_needed']:.0f}x the rows)"
        style = "green" if row["verdict"] == "better" else "red" if row["verdict"] == "worse" else "yellow"
        table.add_row(plain(row["comparison"]), plain(row["set"]), plain(row["metric"]), f"{row['effect']:+.4f}",
                      f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]", f"{row['n']:,}", f"[{style}]{verdict}[/{style}]")
    console.print(table)
    if not any(row["verdict"] == "better" for row in result.comparisons.iter_rows(named=True)
               if row["comparison"] == "selected-random"):
        console.print("On this dataset the selection does [bold]not[/bold] beat a random subset of the same size "
                      "on any metric measured.")
    console.print(f"Comparisons saved to {plain(path)}")
