"""The report in a real browser: headless Chromium over the DevTools protocol (the stdlib-only
driver in ``bench/chromium.py``, shared with the report bench)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bench.chromium import Chromium, find_chromium, screenshot


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return binary


@pytest.mark.slow
def test_report_opens_in_chromium_without_errors(chromium_binary, tmp_path):
    from dataaudit.report.html import write_report
    from tests.report.test_html import HOSTILE, synthetic_result

    evil = " ".join(HOSTILE)
    report = write_report(synthetic_result(3000, n_clusters=12, hostile=True), tmp_path / "report.html")
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        load_ms = browser.load(tools, report)
        assert 0 < load_ms < 15_000

        # Interact: hover across the map until a tooltip shows, colour by issue, open a cluster.
        box = tools.evaluate("(() => { const c = document.getElementById('map-canvas'); c.scrollIntoView(); "
                             "const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()")
        tip_shown = False
        for fx, fy in [(fx / 8, fy / 4) for fy in (2, 1, 3) for fx in range(1, 8)]:
            tools.call("Input.dispatchMouseEvent", type="mouseMoved", x=box[0] + fx * box[2], y=box[1] + fy * box[3])
            tip_shown = tools.evaluate(
                "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(!document.getElementById('map-tip').hidden))))"
            )
            if tip_shown:
                break
        tools.evaluate("document.querySelector('input[value=issue]').click()")
        tools.evaluate("document.querySelector('#clusters-table tbody tr').click()")
        tools.evaluate("window.scrollTo(0, 0)")
        screenshot(tools, tmp_path / "report.png")
        if os.environ.get("DATAAUDIT_SCREENSHOT_DIR"):
            shutil.copy(tmp_path / "report.png", Path(os.environ["DATAAUDIT_SCREENSHOT_DIR"]) / "report.png")

        dom = tools.evaluate(
            "(() => ({"
            " scripts: document.scripts.length,"
            " imgs: document.getElementsByTagName('img').length,"
            " handlers: Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,"
            " cells: Array.from(document.querySelectorAll('td, .txt, .tip div, h3')).map(e => e.textContent),"
            " clusterRows: document.querySelectorAll('#clusters-table tbody tr').length,"
            " checkTables: document.querySelectorAll('.js-check table').length,"
            " groups: document.querySelectorAll('.group .member').length,"
            " detail: document.getElementById('cluster-detail').textContent.length,"
            "}))()"
        )
        problems = tools.problems()
    assert problems == []
    assert (dom["scripts"], dom["imgs"], dom["handlers"]) == (2, 0, 0)
    assert evil in dom["cells"]  # a prompt cell holds the attack string, as text
    assert dom["clusterRows"] == 13 and dom["checkTables"] == 5 and dom["groups"] > 0 and dom["detail"] > 0
    assert tip_shown
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_overview_works_without_javascript(chromium_binary, tmp_path):
    from dataaudit.report.html import write_report
    from tests.report.test_html import synthetic_result

    report = write_report(synthetic_result(200), tmp_path / "report.html")
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        tools.call("Emulation.setScriptExecutionDisabled", value=True)
        browser.load(tools, report)
        overview = tools.evaluate("document.getElementById('overview').innerText")
        coverage = tools.evaluate("document.getElementById('coverage').innerText")
        hidden = tools.evaluate("getComputedStyle(document.querySelector('.needs-js')).display")
    assert "records" in overview and "200" in overview and "duplicate" in overview
    assert "refund policy" in coverage
    assert hidden == "none"


@pytest.mark.slow
def test_plugin_section_and_machine_columns_in_chromium(chromium_binary, tmp_path):
    from dataaudit.checks.base import REGISTRY, register_check
    from dataaudit.report.html import write_report
    from tests.report.test_sections import EVIL, LongPrompt, audited_with_plugin

    register_check(LongPrompt)
    try:
        report = write_report(audited_with_plugin(LongPrompt(max_chars=100)), tmp_path / "report.html")
    finally:
        REGISTRY.pop(LongPrompt.name, None)
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        browser.load(tools, report)
        dom = tools.evaluate(
            "(() => { const s = document.getElementById('check-5'); return {"
            " heads: Array.from(s.querySelectorAll('.js-check th')).map(e => e.textContent),"
            " bars: s.querySelectorAll('.check-extra svg rect').length,"
            " marked: Array.from(s.querySelectorAll('.check-extra mark')).map(e => e.textContent),"
            " svgWidth: s.querySelector('.check-extra svg').getBoundingClientRect().width,"
            " scripts: document.scripts.length }; })()"
        )
        problems = tools.problems()
    assert problems == []
    assert {"kind", "suggested value"} <= set(dom["heads"])
    assert dom["bars"] == 8 and dom["marked"] == [EVIL[:100], EVIL[100:] + " and then some more words"]
    assert dom["svgWidth"] > 100 and dom["scripts"] == 2


@pytest.mark.slow
def test_chat_check_sections_in_chromium(chromium_binary, tmp_path):
    """The contamination, turns, length and language sections of a real audit, with hostile text."""

    from dataaudit.embed import HashingEmbedder
    from dataaudit.io.load import from_records
    from dataaudit.report.html import write_report
    from dataaudit.runner import audit
    from tests.conftest import FixedClusterPipeline

    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    leaked = f"Explain in two sentences why the sky looks blue during the day but red at sunset {evil} please."
    def chat(*turns):
        return {"messages": [{"role": role, "content": text} for role, text in turns]}
    records = [chat(("user", f"How do I sort a list of {n} numbers in Python without changing the original list?"),
                    ("assistant", f"Use sorted(values): it returns a new list of the {n} numbers and leaves the original as it was."))
               for n in range(3, 15)]
    records += [
        chat(("user", leaked), ("assistant", "Blue light scatters more in the air; at sunset light crosses more air.")),
        chat(("user", "First question about trains."), ("user", "Second question about trains."),
             ("assistant", "Trains run on rails.")),
        chat(("assistant", "I speak first here."), ("user", "Why?"), ("assistant", "Because the data is broken.")),
        chat(("user", "What is the weather usually like in Paris during the spring months of the year?"),
             ("assistant", "Au printemps, il fait généralement doux à Paris, avec des averses fréquentes et des "
                           "températures qui montent peu à peu au fil des semaines.")),
        chat(("user", "Write a long story."), ("assistant", " ".join(["The story goes on and on."] * 60) + evil)),
    ]
    eval_file = tmp_path / "benchmark.jsonl"
    eval_file.write_text(json.dumps({"prompt": leaked, "completion": ""}) + "\n"
                         + json.dumps({"prompt": "Name three rivers of Africa.", "completion": ""}) + "\n")
    result = audit(from_records(records), checks={"contamination": {}, "turns": {}, "length": {"max_seq_length": 64},
                                                  "language": {}},
                   eval_sets=[eval_file], embedder=HashingEmbedder(dim=64), cluster_pipeline=FixedClusterPipeline())
    flagged = set(result.findings.get_column("check").to_list())
    assert flagged == {"contamination", "turns", "length", "language"}
    report = write_report(result, tmp_path / "report.html")
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        browser.load(tools, report)
        dom = tools.evaluate(
            "(() => { const ids = Array.from(document.querySelectorAll('section[id^=check-]')).map(s => s.id);"
            " return { sections: ids.length,"
            " extras: document.querySelectorAll('.check-extra').length,"
            " marked: Array.from(document.querySelectorAll('.check-extra mark')).map(e => e.textContent),"
            " bars: document.querySelectorAll('.check-extra svg rect').length,"
            " imgs: document.getElementsByTagName('img').length,"
            " scripts: document.scripts.length }; })()"
        )
        problems = tools.problems()
    assert problems == []
    assert dom["sections"] == 4 and dom["extras"] == 4
    assert any(evil in text for text in dom["marked"])  # the matched span, shown as text
    assert dom["bars"] > 0 and dom["imgs"] == 0 and dom["scripts"] == 2
