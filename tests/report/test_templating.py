"""The report's template environment: autoescaping, the macros checks use, the inlined assets."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.report.html import render_html
from dataaudit.report.templating import assets, fmt, from_source
from tests.report.test_html import synthetic_result


def render(source: str, **context) -> str:
    return from_source('{% import "macros.html.j2" as m %}' + source).render(**context)


def test_values_are_escaped_like_the_standard_library():
    assert render("{{ x }}|{{ m.tile(x, x) }}", x="<b a='1'>&") == (
        "&lt;b a=&#x27;1&#x27;&gt;&amp;|<div class=\"tile\"><div class=\"v\">&lt;b a=&#x27;1&#x27;&gt;&amp;</div>"
        "<div class=\"k\">&lt;b a=&#x27;1&#x27;&gt;&amp;</div></div>"
    )


def test_an_undefined_name_is_an_error():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render("{{ nothing }}")


def test_side_by_side_marks_each_span_and_escapes_each_part():
    html = render('{{ m.side_by_side("<left>", "a<b>c&d", [1, 4], "right", "xyz", None) }}')
    assert '<div class="field">&lt;left&gt;</div><div class="txt">a<mark>&lt;b&gt;</mark>c&amp;d</div>' in html
    assert '<div class="field">right</div><div class="txt">xyz</div>' in html


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=30), start=st.integers(-5, 40), end=st.integers(-5, 40))
def test_side_by_side_keeps_every_character_and_clamps_the_span(text, start, end):
    import html as stdlib

    out = render("{{ m.marked(text, [start, end]) }}", text=text, start=start, end=end)
    assert out.count("<mark>") == 1
    before, rest = out.split("<mark>")
    inside, after = rest.split("</mark>")
    low = min(max(start, 0), len(text))
    high = max(low, min(end, len(text)))
    assert [stdlib.unescape(part) for part in (before, inside, after)] == [text[:low], text[low:high], text[high:]]


def test_side_by_side_shows_a_dash_for_no_text():
    assert '<span class="muted">—</span>' in render('{{ m.side_by_side("a", None, None, "b", "", [0, 3]) }}')


def test_histogram_draws_bars_to_scale_and_the_marker():
    svg = render('{{ m.histogram([0, 10, 20, 40], [2, 4, 1], marker=30, marker_label="budget <512>") }}')
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([0-9.]+)"', svg)]
    assert len(heights) == 3 and heights[1] == max(heights) and heights[0] == pytest.approx(heights[1] / 2)
    assert widths[2] == pytest.approx(2 * widths[1] + 1)  # the last bin is twice as wide (1 px gap)
    x = float(re.search(r'<line class="marker" x1="([0-9.]+)"', svg).group(1))
    assert x == pytest.approx(6 + 0.75 * 468)  # three quarters of the way across the 468 px plot
    assert "budget &lt;512&gt; 30" in svg and "<title>20 – 40: 1</title>" in svg


def test_histogram_without_marker_or_rows():
    assert "<line" not in render("{{ m.histogram([0, 1], [5]) }}")
    assert "<rect" not in render("{{ m.histogram([], []) }}")


def test_fmt_is_for_people():
    assert [fmt(None), fmt(True), fmt(12345), fmt(0.123456), fmt(0.25, percent=True), fmt(float("nan")), fmt("")] == [
        "—", "yes", "12,345", "0.1235", "25.0%", "—", "—"]


def test_assets_are_inlined_and_the_csp_pins_the_script_file():
    html = render_html(synthetic_result(30, production=False))
    folder = resources.files("dataaudit.report") / "assets"
    script = (folder / "report.js").read_text(encoding="utf-8")
    style = (folder / "report.css").read_text(encoding="utf-8")
    assert f"<script>{script}</script>" in html and f"<style>{style}</style>" in html
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    assert f"script-src 'sha256-{digest}'" in html and assets()[2] == digest
