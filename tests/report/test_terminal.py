"""The terminal summary: what it says beside the numbers."""

from __future__ import annotations

import polars as pl
import pytest
from rich.console import Console

from dataaudit.report.terminal import render_audit
from tests.report.test_html import synthetic_result


def rendered(result) -> str:
    console = Console(width=120, record=True)
    render_audit(console, result)
    return console.export_text()


@pytest.mark.parametrize(("basis", "capped"), [("ceiling", True), ("proportional", False), (None, False)])
def test_a_capped_collection_count_is_marked(basis, capped):
    result = synthetic_result(200)
    if basis is not None:  # None: an audit saved before the column existed
        result.gaps = result.gaps.with_columns(pl.lit(basis).alias("collect_basis"))
    text = rendered(result)
    assert "Largest coverage gaps" in text and "refund policy" in text
    assert ("40+" in text) == capped
    assert ("capped at the largest training cluster" in text) == capped
