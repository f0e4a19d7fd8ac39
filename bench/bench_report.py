"""HTML report: render time, file size and browser load time for synthetic audits.

Builds synthetic AuditResults (``bench.report_fixtures``, as the report tests do, with prompts and responses padded to
realistic lengths), renders them with :func:`dataaudit.report.html.render_html`, and prints
a table: ``1st ms`` is the first render of each size (for the first size it also loads the
templates, as the CLI's one render does), ``render ms`` the median of ``--repeat`` renders.
Where Chromium is installed, also opens each report headless and reports navigation start →
end of the load event (which includes parsing the embedded JSON and drawing the map and tables).

Usage: python -m bench.bench_report [--rows 15000 100000] [--repeat 3] [--no-browser]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from bench.chromium import Chromium, find_chromium
from bench.report_fixtures import payload, synthetic_result
from dataaudit.report.html import render_html

FILLER = (
    "I have been trying to sort this out for a while and would appreciate a clear, step by step answer "
    "that also explains why the problem happens in the first place. "
)


def realistic(rows: int, seed: int = 0):
    """A synthetic audit whose prompts (~100-1,400 chars) and responses (~40-700) look like real data."""
    result = synthetic_result(rows, n_clusters=max(8, rows // 500), seed=seed)
    repeat = (pl.col("row") * 7919 % 11).cast(pl.Int64)
    result.rows = result.rows.with_columns(
        (pl.col("prompt") + " " + pl.lit(FILLER).repeat_by(repeat).list.join("")).alias("prompt"),
        (pl.col("response") + " " + pl.lit(FILLER).repeat_by(repeat // 2).list.join("")).alias("response"),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[15_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="renders per size (median reported)")
    parser.add_argument("--max-map-points", type=int, default=20_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    chromium = None if args.no_browser else find_chromium()

    header = f"{'rows':>8} {'flagged':>8} {'map pts':>8} {'findings':>9} {'1st ms':>7} {'render ms':>9} {'size MB':>8} {'MB/1k rows':>10} {'load ms':>8}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            result = realistic(rows)
            times, html = [], ""
            for _ in range(args.repeat):
                started = time.perf_counter()
                html = render_html(result, max_map_points=args.max_map_points)
                times.append(time.perf_counter() - started)
            path = Path(folder) / f"report-{rows}.html"
            path.write_text(html, encoding="utf-8")
            size = path.stat().st_size / 1e6
            flagged = result.findings.get_column("row").n_unique()
            shown = payload(html)["map"]["shown"]
            load = "—"
            if chromium is not None:
                with Chromium(binary=chromium) as browser:
                    tools = browser.page()
                    loads = [browser.load(tools, path) for _ in range(args.repeat)]
                    problems = tools.problems()
                load = f"{statistics.median(loads):.0f}" + (" (!)" if problems else "")
            print(f"{rows:>8,} {flagged:>8,} {shown:>8,} {result.findings.height:>9,} {1000 * times[0]:>7.0f} "
                  f"{1000 * statistics.median(times):>9.0f} "
                  f"{size:>8.2f} {size / rows * 1000:>10.3f} {load:>8}")
    if chromium is None and not args.no_browser:
        print("(chromium not found: no load times)")


if __name__ == "__main__":
    main()
