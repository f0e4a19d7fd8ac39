"""Control-token bench: plant the tokenizer's control tokens into real conversations and find them.

Builds OpenAI ``messages`` rows from the realdata sets (GPTeacher codegen and roleplay, GSM8K,
Code Alpaca, and BFCL's function-calling conversations with their calls and tools), then plants
one control token of the target tokenizer (default SmolLM2's: ``<|im_end|>``, ``<|endoftext|>``,
``<|im_start|>`` and its other special tokens) into a share of the rows: at a random character
of the user prompt or of the response (for BFCL's call-only answers, inside a string argument of
the call). The set is written to JSONL, loaded like any file, and the ``template`` check runs.

It prints row-level precision and recall of ``special_token_in_text`` against the planted rows,
whether the reported token and turn are the planted ones, the rows flagged among the clean
GPTeacher and GSM8K rows (must be none), and the check's time per 10k rows (``--rows`` sizes,
the set replicated with each copy's texts changed), with the render / scan stages split.

    nice -n 10 python -m bench.bench_control_tokens --rows 10000 100000 --compare-length
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from bench._common import REALDATA, fast_context

ALPACA = ("gpteacher_codegen.jsonl", "gpteacher_roleplay.jsonl", "code_alpaca_2k.jsonl")
CLEAN = ("gpteacher_codegen.jsonl", "gpteacher_roleplay.jsonl", "gsm8k.jsonl")


def conversations(realdata: Path) -> list[tuple[str, dict]]:
    """``(source, record)`` for every row of the five sets, as OpenAI chat records."""
    if not (realdata / "gsm8k.jsonl").exists():
        sys.exit(f"{realdata} is absent: pass --realdata DIR")
    rows = []
    for name in ALPACA:
        for line in lines(realdata / name):
            item = json.loads(line)
            prompt = item["instruction"] + (f"\n\n{item['input']}" if item.get("input") else "")
            rows.append((name, chat(prompt, item["output"])))
    for line in lines(realdata / "gsm8k.jsonl"):
        item = json.loads(line)
        rows.append(("gsm8k.jsonl", chat(item["question"], item["answer"])))
    for line in lines(realdata / "bfcl_tool_calls.jsonl"):
        item = json.loads(line)
        rows.append(("bfcl_tool_calls.jsonl", {"messages": item["messages"], "tools": item.get("tools")}))
    return rows


def lines(path: Path) -> list[str]:
    """JSONL lines (split on newlines only: texts hold U+2028, which ``splitlines`` would cut at)."""
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def chat(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def plant(record: dict, token: str, rng: random.Random) -> tuple[dict, int]:
    """The record with ``token`` at a random character of its prompt or its response; the turn."""
    record = json.loads(json.dumps(record))
    messages = record["messages"]
    user = next(i for i, m in enumerate(messages) if m["role"] == "user")
    answer = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    turn = user if rng.random() < 0.5 else answer
    message = messages[turn]
    if message.get("content") or not message.get("tool_calls"):
        text = message.get("content") or ""
        at = rng.randint(0, len(text))
        message["content"] = text[:at] + token + text[at:]
        return record, turn
    call = message["tool_calls"][0]["function"]  # a call-only answer: inside a string argument
    arguments = json.loads(call["arguments"])
    strings = [key for key, value in arguments.items() if isinstance(value, str)]
    key = rng.choice(strings) if strings else "note"
    value = arguments.get(key, "")
    at = rng.randint(0, len(value))
    arguments[key] = value[:at] + token + value[at:]
    call["arguments"] = json.dumps(arguments, ensure_ascii=False)
    return record, turn


def first_of(rows: list[tuple[str, dict]], source: str) -> int:
    return next(i for i, (name, _) in enumerate(rows) if name == source)


def write(records: list[dict], folder: Path, name: str) -> Path:
    path = folder / name
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def run_check(path: Path, tokenizer: str | None, *, compare_length: bool = False):
    """The template check's result, seconds and stage timings (and the length check's seconds on
    the same rows, for scale: it renders and tokenizes every row)."""
    from dataaudit.checks.length import LengthCheck
    from dataaudit.checks.template import TemplateCheck
    from dataaudit.io.load import load

    dataset = load(path)
    ctx = fast_context(dataset)
    started = time.perf_counter()
    result = TemplateCheck(tokenizer=tokenizer).run(ctx)
    seconds = time.perf_counter() - started
    length = None
    if compare_length:
        started = time.perf_counter()
        LengthCheck(tokenizer=tokenizer).run(fast_context(dataset))
        length = time.perf_counter() - started
    return result, seconds, dict(ctx.timings), length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder or .gguf (default: SmolLM2's)")
    parser.add_argument("--share", type=float, default=0.1, help="share of rows that get a planted token")
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000], help="sizes to time the check at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare-length", action="store_true", help="also time the length check on the same rows")
    args = parser.parse_args()

    from dataaudit.features.chat_template import load_chat_template

    template = load_chat_template(args.tokenizer)
    tokens = list(template.control_tokens)
    common = [token for token in ("<|im_end|>", "<|endoftext|>", "<|im_start|>") if token in tokens]
    rng = random.Random(args.seed)
    rows = conversations(args.realdata)
    natural = {i for i, (_, record) in enumerate(rows) if any(t in json.dumps(record, ensure_ascii=False) for t in tokens)}
    planted: dict[int, tuple[str, int]] = {}
    records = []
    for index, (_, record) in enumerate(rows):
        if index not in natural and rng.random() < args.share:
            token = rng.choice(common) if common and rng.random() < 0.7 else rng.choice(tokens)
            record, turn = plant(record, token, rng)
            planted[index] = (token, turn)
        records.append(record)
    print(f"tokenizer: {template.name}; {len(tokens)} control tokens; {len(rows):,} real rows "
          f"({len(natural)} already hold one, left unplanted and counted apart), {len(planted):,} planted")

    with tempfile.TemporaryDirectory() as scratch:
        path = write(records, Path(scratch), "planted.jsonl")
        result, seconds, _, _ = run_check(path, args.tokenizer)
    findings = result.findings.filter(result.findings.get_column("kind") == "special_token_in_text")
    flagged = set(findings.get_column("row").to_list())
    truth = set(planted)
    hits = flagged & truth
    precision = len(hits) / max(len(flagged - set(natural)), 1)
    recall = len(hits) / max(len(truth), 1)
    columns = result.rows.sort("row")
    token_of = columns.get_column("template_token").to_list()
    turn_of = columns.get_column("template_token_turn").to_list()
    exact = sum(token_of[i] == planted[i][0] and turn_of[i] == planted[i][1] for i in hits)
    print(f"planted: precision {precision:.4f}, recall {recall:.4f} ({len(hits):,} of {len(truth):,} found, "
          f"{len(flagged - truth - set(natural))} false); reported token and turn exact in {exact:,} of {len(hits):,}")
    print(f"rows already holding a control token: {len(natural)}, flagged {len(flagged & set(natural))}")
    severity = dict(findings.select("row", "severity").iter_rows())
    from dataaudit.features.tokens import load_tokenizer

    backend = load_tokenizer(args.tokenizer).backend_tokenizer
    for index in sorted(natural):
        token = token_of[index]
        ids = backend.encode(f"echo {token}", add_special_tokens=False).ids
        print(f"  {rows[index][0]} line {index - first_of(rows, rows[index][0]) + 1}: {token!r} in turn "
              f"{turn_of[index]} ({severity.get(index)}); the tokenizer encodes it as control id "
              f"{backend.token_to_id(token)}: {backend.token_to_id(token) in ids}")
    planted_severity = [severity[i] for i in hits]
    print(f"planted findings by severity: error {planted_severity.count('error'):,}, "
          f"warning {planted_severity.count('warning'):,}")
    for source in sorted({source for source, _ in rows}):
        members = [i for i, (name, _) in enumerate(rows) if name == source]
        clean = [i for i in members if i not in truth and i not in natural]
        print(f"  {source:28s} rows {len(members):5,}  planted {sum(i in truth for i in members):4,}  "
              f"found {sum(i in hits for i in members):4,}  clean {len(clean):5,}  clean flagged "
              f"{sum(i in flagged for i in clean)}" + ("  (clean set)" if source in CLEAN else ""))
    print(f"check on {len(rows):,} rows: {seconds:.2f} s")

    for size in args.rows:
        order = list(range(len(records))) * (size // len(records) + 1)
        random.Random(args.seed).shuffle(order)  # every source in every size
        order = order[:size]
        copies = [json.loads(json.dumps(records[i])) for i in order]
        for number, record in enumerate(copies):
            first = record["messages"][0]
            first["content"] = f"{first.get('content') or ''} (#{number})"
        with tempfile.TemporaryDirectory() as scratch:
            path = write(copies, Path(scratch), "scaled.jsonl")
            result, seconds, stages, length = run_check(path, args.tokenizer, compare_length=args.compare_length)
        shown = ", ".join(f"{name} {value:.2f} s" for name, value in stages.items() if name.startswith("template"))
        beside = f"; the length check on the same rows: {length:.2f} s" if length is not None else ""
        print(f"{size:,} rows: {seconds:.2f} s = {seconds / size * 10_000:.2f} s per 10k rows "
              f"({result.summary.get('shapes')} structures rendered; {shown}){beside}")


if __name__ == "__main__":
    main()
