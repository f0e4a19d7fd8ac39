"""Per-check report sections: description and hook from the registered class, plug-ins included;
the typed summary; audits saved before findings had a kind."""

from __future__ import annotations

import json
import logging

import numpy as np
import polars as pl
import pytest

from dataaudit.checks.base import (
    REGISTRY,
    Check,
    CheckResult,
    Finding,
    ReportSection,
    register_check,
    result_from_findings,
)
from dataaudit.params import Interval
from dataaudit.report.html import render_html
from dataaudit.report.sections import typed_summary
from dataaudit.result import AuditResult
from tests.conftest import make_context, make_dataset
from tests.report.test_html import ALLOWED_TAGS, CHECKS, HOSTILE, parse, payload, synthetic_result

EVIL = " ".join(HOSTILE)
#: What a check's own section may add to the report's tags: the macros' <mark> and inline SVG.
SECTION_TAGS = {"mark", "svg", "rect", "line", "text", "title"}

HOOK_TEMPLATE = """{% import "macros.html.j2" as m %}
<h3>Prompt lengths</h3>
{{ m.histogram(edges, counts, marker=max_chars, marker_label="limit " ~ note) }}
<h3>Longest prompt: what fits and what does not</h3>
{{ m.side_by_side("row " ~ row, prompt, [0, max_chars], "past the limit", prompt, [max_chars, prompt|length]) }}
"""


class LongPrompt(Check):
    """A plug-in as a user would write one: flags prompts over a character budget and shows
    their length distribution against that budget in its report section."""

    name = "long_prompt"
    description = "Prompts over the <b>character budget</b> & cut when trained: " + HOSTILE[1]
    kinds = ("over_budget",)
    _parameter_constraints = {"max_chars": [Interval(int, 1, None)]}

    def __init__(self, *, max_chars: int = 60):
        self.max_chars = max_chars

    def run(self, ctx) -> CheckResult:
        prompts = ctx.dataset.frame.get_column("prompt").to_list()
        findings = [
            Finding(row=row, score=self.max_chars / len(prompt), severity="warning", kind="over_budget",
                    reason=f"{len(prompt)} characters, over {self.max_chars}", suggested_value=prompt[: self.max_chars])
            for row, prompt in enumerate(prompts)
            if len(prompt) > self.max_chars
        ]
        return result_from_findings(self.name, ctx, findings, summary={"max_chars": self.max_chars})

    @classmethod
    def report_section(cls, result: AuditResult) -> ReportSection | None:
        lengths = result.rows.get_column("prompt").str.len_chars().to_numpy()
        max_chars = result.summary["checks"][cls.name]["max_chars"]
        counts, edges = np.histogram(lengths, bins=8)
        longest = int(lengths.argmax())
        return ReportSection(
            template=HOOK_TEMPLATE,
            context={"edges": edges.tolist(), "counts": counts.tolist(), "max_chars": max_chars, "note": EVIL,
                     "row": longest, "prompt": result.rows.get_column("prompt")[longest]},
        )


@pytest.fixture
def long_prompt():
    """LongPrompt registered for one test, and gone from the registry afterwards."""
    register_check(LongPrompt)
    try:
        yield LongPrompt
    finally:
        REGISTRY.pop(LongPrompt.name, None)


def audited_with_plugin(check: Check) -> AuditResult:
    """The synthetic audit plus a real run of ``check`` over its prompts (one of them hostile)."""
    result = synthetic_result(60, production=False)
    prompts = [EVIL + " and then some more words", *result.rows.get_column("prompt").to_list()[1:]]
    result.rows = result.rows.with_columns(pl.Series("prompt", prompts))
    ran = check.run(make_context(make_dataset(prompts, result.rows.get_column("response").to_list())))
    result.rows = result.rows.join(ran.rows, on="row", how="left")
    result.findings = pl.concat([result.findings, ran.findings])
    result.summary["checks"][check.name] = {"status": "ok", "params": check.get_params(), **ran.summary}
    return result


def test_a_plugin_check_gets_its_section_description_and_hook_escaped(long_prompt):
    result = audited_with_plugin(long_prompt(max_chars=100))
    html = render_html(result)
    index = len(CHECKS)
    assert payload(html)["checks"][index] == "long_prompt"
    section = html[html.index(f'<section id="check-{index}"'):html.index("</section>", html.index(f'id="check-{index}"'))]
    assert "Check: long_prompt" in section and f'<a href="#check-{index}">long_prompt</a>' in html
    # The description, from the class, as text.
    assert "Prompts over the &lt;b&gt;character budget&lt;/b&gt; &amp; cut when trained" in section
    # The hook's section after the findings table, drawn with the report's macros.
    assert section.index('class="js-check') < section.index('class="check-extra"')
    assert section.count("<rect ") == 8 and '<line class="marker"' in section
    assert "<mark>" in section and section.count("<mark>") == 2
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in section  # the hostile prompt, as text
    parsed = parse(html)
    tags = [tag for tag, _ in parsed.tags]
    assert set(tags) <= ALLOWED_TAGS | SECTION_TAGS and tags.count("script") == 2 and "img" not in tags
    assert not [name for _, attrs in parsed.tags for name, _ in attrs if name.startswith("on")]
    assert "<script>alert" not in html and "<img" not in html
    # Its findings (the hostile prompt only) reach the viewer with their machine fields.
    findings = payload(html)["findings"][index]
    assert findings["row"] == [0] and findings["kind"] == ["over_budget"] and findings["suggested_value"] == [EVIL[:100]]


def test_the_plugin_leaves_the_registry_clean(long_prompt):
    assert REGISTRY["long_prompt"] is long_prompt


def test_a_check_not_registered_here_still_gets_its_findings_section():
    assert "long_prompt" not in REGISTRY
    result = audited_with_plugin(LongPrompt(max_chars=100))
    html = render_html(result)
    assert 'id="check-5"' in html and "Check: long_prompt" in html
    assert "character budget" not in html and 'class="check-extra"' not in html


def test_a_failing_hook_costs_only_its_own_section(long_prompt, caplog):
    result = audited_with_plugin(long_prompt(max_chars=100))
    del result.summary["checks"]["long_prompt"]["max_chars"]  # the hook reads it: KeyError
    with caplog.at_level(logging.WARNING, logger="dataaudit.report.sections"):
        html = render_html(result)
    assert "own section could not be drawn: KeyError: &#x27;max_chars&#x27;" in html
    assert 'id="coverage"' in html and "long_prompt" in caplog.text


def test_a_hook_template_with_an_undefined_name_is_reported(long_prompt, monkeypatch):
    monkeypatch.setattr(LongPrompt, "report_section", classmethod(lambda cls, result: ReportSection("{{ missing }}")))
    html = render_html(audited_with_plugin(long_prompt(max_chars=100)))
    assert "could not be drawn: UndefinedError" in html


def test_builtin_sections_describe_their_check_from_the_class():
    from dataaudit.checks import available_checks

    html = render_html(synthetic_result(40, production=False))
    for name, check in available_checks().items():
        if name in CHECKS:
            assert f'<p class="muted">{check.description}</p>' in html.replace("&#x27;", "'")


def test_findings_table_carries_kind_and_suggested_value():
    data = payload(render_html(synthetic_result(400, production=False)))
    conflict = data["findings"][CHECKS.index("conflict")]
    assert set(conflict["kind"]) == {"label_conflict"} and all(v and v.startswith("intent_") for v in conflict["suggested_value"])
    assert set(data["findings"][CHECKS.index("format")]["suggested_value"]) == {None}


def test_an_audit_saved_before_kinds_and_schema_versions_renders(tmp_path):
    result = synthetic_result(120, finetune=True)
    folder = result.save(tmp_path / "audit")
    summary = json.loads((folder / "summary.json").read_text())
    del summary["schema_version"]
    (folder / "summary.json").write_text(json.dumps(summary))
    lines = [json.loads(line) for line in (folder / "findings.jsonl").read_text().splitlines()]
    (folder / "findings.jsonl").write_text("".join(
        json.dumps({k: v for k, v in record.items() if k not in ("kind", "suggested_value")}) + "\n" for record in lines
    ))
    html = render_html(AuditResult.load(folder))
    data = payload(html)
    assert data["checks"] == list(CHECKS) and all(set(f["kind"]) <= {None} for f in data["findings"])
    assert sum(f["total"] for f in data["findings"]) == len(lines)
    assert 'id="finetune"' in html and 'id="check-4"' in html


def test_typed_summary_drops_sections_of_the_wrong_type_only():
    summary = {"schema_version": 2, "dataset": "not a dict", "checks": {"a": None, "b": {"status": "ok"}},
               "timings": [], "production": None, "embedder": "hashing", "coverage": {"drift": 3}}
    assert typed_summary(summary) == {"schema_version": 2, "checks": {"a": {}, "b": {"status": "ok"}},
                                      "embedder": "hashing", "coverage": {"drift": 3}}
    assert typed_summary(None) == {}


def test_fine_tune_verdicts_travel_with_each_flagged_row():
    import dataclasses

    from dataaudit.report.html import render_html

    result = synthetic_result(200)
    verdicts = ["confirmed", "contradicted", "no evidence"]
    findings = result.findings.with_row_index("i").with_columns(
        verdict=pl.col("i").map_elements(lambda i: verdicts[i % 3], return_dtype=pl.String)).drop("i")
    data = payload(render_html(dataclasses.replace(result, findings=findings)))
    shown = [v for block in data["findings"] if block for v in block["verdict"]]
    assert shown and set(shown) <= set(verdicts)
    # An audit without a fine-tune carries no verdicts.
    assert all(v is None for block in payload(render_html(result))["findings"] if block for v in block["verdict"])
