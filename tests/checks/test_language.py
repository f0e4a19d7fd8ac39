"""The language check on real multilingual sentences (bench/multilingual.py, shared with the bench)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.multilingual import LONG, SHORT, UNDETERMINED
from dataaudit.checks.language import LanguageCheck
from dataaudit.features.language import detect_languages
from dataaudit.io.load import from_records
from tests.conftest import make_context

pytest.importorskip("py3langid")
BY_LANGUAGE = {}
for code, text in LONG:
    BY_LANGUAGE.setdefault(code, []).append(text)


def test_language_id_accuracy_on_written_sentences():
    """All long sentences right; short ones right or undetermined, never wrong (measured 64/65, 1 undetermined)."""
    long_codes, _ = detect_languages([text for _, text in LONG])
    assert long_codes == [code for code, _ in LONG]
    short_codes, _ = detect_languages([text for _, text in SHORT])
    assert all(found in (expected, None) for found, (expected, _) in zip(short_codes, SHORT))
    assert sum(found == expected for found, (expected, _) in zip(short_codes, SHORT)) >= len(SHORT) - 2


def test_short_texts_code_and_numbers_are_undetermined():
    codes, confidence = detect_languages(UNDETERMINED)
    assert codes == [None] * len(UNDETERMINED) and (confidence == 0).all()


def run(pairs, clusters=None):
    dataset = from_records([{"prompt": prompt, "completion": response} for prompt, response in pairs])
    return LanguageCheck().run(make_context(dataset, cluster_labels=clusters))


def test_a_response_in_another_language_is_flagged():
    pairs = [
        (BY_LANGUAGE["fr"][0], BY_LANGUAGE["en"][0]),  # French question, English answer
        (BY_LANGUAGE["de"][1], BY_LANGUAGE["de"][2]),
        (BY_LANGUAGE["ja"][0], BY_LANGUAGE["zh"][1]),
        (BY_LANGUAGE["es"][0], "42"),  # undetermined response: never flagged
        ("Translate into German: " + BY_LANGUAGE["en"][2], BY_LANGUAGE["de"][2]),
        ("Answer in Spanish please. " + BY_LANGUAGE["en"][1], BY_LANGUAGE["es"][1]),
        ("def f(x): return x", BY_LANGUAGE["ru"][0]),
    ]
    result = run(pairs)
    findings = result.findings.filter(result.findings["kind"] == "response_language")
    assert findings.get_column("row").to_list() == [0, 2]
    assert findings.get_column("suggested_value").to_list() == ["fr", "ja"]
    assert "prompt is in French but the response is in English" in findings.get_column("reason")[0]
    assert result.rows.get_column("language_prompt").to_list() == ["fr", "de", "ja", "es", "en", "en", None]
    assert result.rows.get_column("language_response").to_list() == ["en", "de", "zh", None, "de", "es", "ru"]
    assert result.summary["translation_requests_skipped"] == 2


def test_tool_call_arguments_are_not_the_reply_language():
    """A call whose arguments are foreign device names (Korean in BFCL live_simple) answers an English prompt;
    only the turn's answer text is the reply's language."""
    def calling(arguments, content=""):
        return {"messages": [{"role": "user", "content": BY_LANGUAGE["en"][0]},
                             {"role": "assistant", "content": content, "tool_calls": [
                                 {"id": "c1", "type": "function", "function": {"name": "ControlAppliance.execute",
                                                                               "arguments": arguments}}]}]}

    import json

    foreign = json.dumps({"command": BY_LANGUAGE["ru"][0]}, ensure_ascii=False)
    dataset = from_records([calling(foreign), calling(foreign, content=BY_LANGUAGE["de"][2])])
    result = LanguageCheck().run(make_context(dataset))
    assert result.rows.get_column("language_response").to_list() == [None, "de"]
    assert result.findings.filter(result.findings["kind"] == "response_language").get_column("row").to_list() == [1]


def test_a_row_in_a_cluster_minority_language_is_flagged():
    english = [(text, text) for text in BY_LANGUAGE["en"]] * 2  # 6 English rows
    italian = [(BY_LANGUAGE["it"][0], BY_LANGUAGE["it"][0])]
    mixed = [(BY_LANGUAGE[code][0], BY_LANGUAGE[code][0]) for code in ("fr", "de", "es", "pt", "nl", "pl")]
    result = run(english + italian + mixed, clusters=[0] * 7 + [1] * 6)
    findings = result.findings.filter(result.findings["kind"] == "cluster_language")
    assert findings.get_column("row").to_list() == [6]  # cluster 1 has no clear majority: nothing flagged there
    assert findings.get_column("suggested_value").to_list() == ["en"]
    assert findings.get_column("severity").to_list() == ["info"]
    assert result.summary["clusters_with_majority"] == 1


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(UNDETERMINED), min_size=1, max_size=6),
    st.lists(st.sampled_from(LONG), min_size=1, max_size=6),
)
def test_undetermined_texts_are_never_flagged(noise, sentences):
    """Invariant: a row whose prompt or response is undetermined raises no response_language finding."""
    pairs = [(text, sentence) for text, (_, sentence) in zip(noise, sentences)]
    pairs += [(sentence, text) for text, (_, sentence) in zip(noise, sentences)]
    result = run(pairs)
    assert (result.findings.filter(result.findings["kind"] == "response_language")).height == 0


def test_batched_classifier_gives_py3langid_answers():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from dataaudit.features.language import classify

    texts = [text for _, text in LONG + SHORT] + UNDETERMINED + ["", "ALL CAPS SHOUTING ABOUT THE WEATHER TODAY"]
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    codes, probabilities = classify(texts)
    expected = [reference.classify(text) for text in texts]
    assert codes == [code for code, _ in expected]
    assert probabilities == pytest.approx([p for _, p in expected], abs=1e-4)


def test_report_section_shows_the_language_mix():
    import polars as pl

    from dataaudit.result import AuditResult

    check = run(
        [(BY_LANGUAGE["fr"][0], BY_LANGUAGE["en"][0]), (BY_LANGUAGE["de"][0], BY_LANGUAGE["de"][1]), ("ok", "42")]
    )
    result = AuditResult(
        rows=pl.DataFrame({"row": [0, 1, 2]}),
        findings=check.findings,
        clusters=pl.DataFrame(),
        summary={"checks": {"language": check.summary}},
    )
    section = LanguageCheck.report_section(result)
    from dataaudit.report.templating import environment

    html = environment().get_template(section.template_name).render(**section.context)
    assert "French (<code>fr</code>)" in html and "German (<code>de</code>)" in html and "1 prompt(s)" in html
