"""The self-contained HTML report: one file, no network, quick to open on 100k rows.

Templates (``templates/*.html.j2``, Jinja2 with autoescaping) render what must work without
JavaScript: the overview, each check's summary and its own evidence, coverage and the
fine-tune confirmation. The rest is embedded once, as JSON (:mod:`dataaudit.report.payload`),
for a small vanilla-JS viewer (``assets/report.js``): the 2-D map, the cluster table with
drill-down, each check's worst rows and groups.

Dataset text never reaches the page as markup: on the server every value is autoescaped, in
the browser it only goes through ``textContent``; the JSON block escapes ``<``, ``>`` and
``&`` so no string can close its tag; and a Content-Security-Policy pinned to the hash of the
report's own script keeps any other script (or ``onerror=`` handler) from running even if
something slipped through.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataaudit.io.atomic import write_text_atomic
from dataaudit.report.payload import (
    MAX_FINDINGS_PER_CHECK,
    SEVERITY_NAMES,
    json_for_script,
    own_findings,
    viewer_payload,
)
from dataaudit.report.sections import check_names, check_views, coverage_view, finetune_view, timings, typed_summary
from dataaudit.report.selection_view import selection_view

if TYPE_CHECKING:
    from dataaudit.result import AuditResult

__all__ = ["MAX_FINDINGS_PER_CHECK", "render_html", "write_report"]

#: Its name before the split into modules, which tests still import.
_json_for_script = json_for_script
#: Where the data JSON goes. The JSON (megabytes) is spliced in after rendering: passed through
#: the template engine, it would be copied into markup several times, slowing every render.
_DATA_SLOT = "<!--audit-data-->"


def render_html(result: AuditResult, *, max_map_points: int = 20000, rows_per_page: int = 50,
                selection: Any = None) -> str:
    """The report as one HTML string that needs nothing but a browser to open. ``selection`` is
    what ``dataaudit select`` (and ``finetune --selection``) saved beside the audit
    (:func:`dataaudit.selection.saved.load_selection`); its section is left out when None."""
    from markupsafe import Markup

    from dataaudit.report.templating import assets, environment

    summary = typed_summary(result.summary)
    findings = own_findings(result.findings)
    checks = check_names(result, summary, findings)
    payload = viewer_payload(result, findings, checks, max_map_points=max_map_points, rows_per_page=rows_per_page)
    style, script, script_hash = assets()
    dataset = summary.get("dataset", {})
    page = (
        environment()
        .get_template("report.html.j2")
        .render(
            title=f"dataaudit report — {dataset.get('path') or 'dataset'}",
            csp=Markup(
                "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
            ),
            style=style,
            script=script,
            data_json=Markup(_DATA_SLOT),
            summary=summary,
            dataset=dataset,
            severities=SEVERITY_NAMES,
            rows=result.rows.height,
            cluster_count=result.clusters.height,
            checks=check_views(result, summary, checks, payload["findings"]),
            timings=timings(summary),
            coverage=coverage_view(summary, result),
            finetune=finetune_view(summary),
            selection=selection_view(selection, result.clusters),
        )
    )
    # The last slot is the real one: only the fixed end of the page follows it.
    head, _, tail = page.rpartition(_DATA_SLOT)
    return "".join((head, json_for_script(payload), tail))


def write_report(
    result: AuditResult, path: str | os.PathLike, *, max_map_points: int = 20000, rows_per_page: int = 50,
    selection: Any = None,
) -> Path:
    """Render and write the report atomically (a killed run leaves the old file or the new one)."""
    target = Path(path)
    write_text_atomic(target, render_html(result, max_map_points=max_map_points, rows_per_page=rows_per_page,
                                          selection=selection))
    return target


def save_with_report(result: AuditResult, directory: str | os.PathLike) -> Path:
    """Save ``result`` into ``directory`` with its HTML report (:data:`~dataaudit.io.audit_store.REPORT_FILE`).

    The report is rendered into the staging folder and swapped in with the frames, so a killed
    run leaves the whole old audit or the whole new one; the summary records its path
    (``report_path``).
    """
    from dataaudit.io.audit_store import REPORT_FILE, save_audit

    result.summary["report_path"] = str(Path(directory) / REPORT_FILE)
    return save_audit(directory, frames=result.frames(), findings=result.findings, summary=result.summary,
                      extra_files={REPORT_FILE: lambda path: write_report(result, path)})
