"""Chat-fault bench: plant every turns fault and both length faults into real conversations.

Builds ~1,500 OpenAI ``messages`` conversations from the realdata instruction sets (Code
Alpaca, GPTeacher codegen/roleplay, self-instruct seeds, AlpacaEval; some joined into two
exchanges, some with a system message), keeps only clean ones (no empty text, under 400
SmolLM2 tokens), then plants one fault each into disjoint rows:

- turns: consecutive_roles, assistant_first, system_not_first, empty_turn, no_final_assistant,
  bad_role, role_order;
- length at ``--max-seq-length 512``: response_truncated (the prompt grows until the budget falls
  inside the response) and response_dropped (the prompt alone passes the budget).

The set is written to JSONL and loaded like any file (the loader must keep the broken rows), then
the turns and length checks run; it prints precision and recall per check and per kind. With
``--rows N`` it also times the three new checks on N rows (the set replicated, each copy's
texts perturbed so no cache helps), beside the format and quality checks for scale; and with
``--compare-language-id`` it measures py3langid against lingua on bench/multilingual.py.

    nice -n 10 python -m bench.bench_chat_faults --rows 100000 --compare-language-id
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import REALDATA, read_jsonl

SOURCES = (
    "code_alpaca_2k.jsonl",
    "gpteacher_codegen.jsonl",
    "gpteacher_roleplay.jsonl",
    "self_instruct_seed_tasks.jsonl",
    "alpaca_eval_805.jsonl",
)
TURN_KINDS = (
    "consecutive_roles",
    "assistant_first",
    "system_not_first",
    "empty_turn",
    "no_final_assistant",
    "bad_role",
    "role_order",
)
LENGTH_KINDS = ("response_truncated", "response_dropped")
SYSTEMS = ["You are a helpful assistant.", "Answer concisely and accurately.", "You are an expert programmer."]


def exchanges() -> list[tuple[str, str]]:
    if not (REALDATA / SOURCES[0]).exists():
        sys.exit(f"{REALDATA} is absent: pass --realdata DIR")
    pairs = []
    for name in SOURCES:
        for record in read_jsonl(REALDATA / name):
            prompt = "\n\n".join(
                part for part in (record.get("instruction"), record.get("input")) if part and part.strip()
            )
            response = record.get("output")
            if prompt.strip() and isinstance(response, str) and response.strip():
                pairs.append((prompt, response))
    return pairs


def base_conversations(rng: random.Random, count: int, tokenizer, budget_clean: int = 400) -> list[list[dict]]:
    pairs = exchanges()
    rng.shuffle(pairs)
    conversations = []
    for index in range(0, len(pairs) - 1, 2):
        (p1, r1), (p2, r2) = pairs[index], pairs[index + 1]
        messages = [{"role": "user", "content": p1}, {"role": "assistant", "content": r1}]
        if rng.random() < 0.3:
            messages += [{"role": "user", "content": p2}, {"role": "assistant", "content": r2}]
        if rng.random() < 0.3:
            messages.insert(0, {"role": "system", "content": rng.choice(SYSTEMS)})
        conversations.append(messages)
    lengths = [
        len(ids) for ids in tokenizer.apply_chat_template(conversations, tokenize=True, return_dict=True)["input_ids"]
    ]
    return [c for c, n in zip(conversations, lengths) if n < budget_clean][:count]


def plant(messages: list[dict], kind: str, rng: random.Random, filler: list[str], tokenizer, budget: int) -> list[dict]:
    m = [dict(turn) for turn in messages]
    spoken = 1 if m[0]["role"] == "system" else 0
    if kind == "consecutive_roles":
        m.insert(spoken + 1, {"role": "user", "content": "Please keep the answer short."})
    elif kind == "assistant_first":
        m.insert(spoken, {"role": "assistant", "content": "Hello! How can I help you today?"})
    elif kind == "system_not_first":
        m.insert(spoken + 1, {"role": "system", "content": rng.choice(SYSTEMS)})
    elif kind == "empty_turn":
        m[spoken]["content"] = rng.choice(["", " ", "\n\n"])
    elif kind == "no_final_assistant":
        m.pop()
    elif kind == "bad_role":
        m[spoken]["role"] = rng.choice(["customer", "narrator", "Human:"])
    elif kind == "role_order":
        m.insert(spoken + 1, {"role": "tool", "content": '{"result": "ok"}'})
    else:  # length: grow the first user turn with real text until the budget falls where wanted
        response = len(tokenizer(m[-1]["content"], add_special_tokens=False)["input_ids"])
        if kind == "response_truncated" and response < 8:
            return []
        for _ in range(200):
            total = len(tokenizer.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"])
            before = total - response - 2
            if kind == "response_dropped" and before >= budget + 5:
                return m
            if kind == "response_truncated" and budget - response + 3 <= before <= budget - 3:
                return m
            step = rng.choice(filler)
            if kind == "response_truncated" and before + 40 > budget - response:
                step = " ".join(step.split()[:3])
            m[spoken]["content"] += "\n\n" + step
        return []
    return m


def scores(flagged: set[int], truth: set[int]) -> tuple[float, float, int]:
    hits = len(flagged & truth)
    return (hits / len(flagged) if flagged else 1.0), (hits / len(truth) if truth else 1.0), len(truth)


def fault_bench(args, tokenizer) -> list[list[dict]]:
    from dataaudit.checks.length import LengthCheck
    from dataaudit.checks.turns import TurnsCheck
    from dataaudit.io.load import load

    rng = random.Random(args.seed)
    conversations = base_conversations(rng, args.size, tokenizer)
    filler = [prompt for prompt, _ in exchanges()]
    truth: dict[int, str] = {}
    order = list(range(len(conversations)))
    rng.shuffle(order)
    per_kind = max(10, len(conversations) // 30)
    cursor = 0
    for kind in TURN_KINDS + LENGTH_KINDS:
        planted = 0
        while planted < per_kind and cursor < len(order):
            index = order[cursor]
            cursor += 1
            changed = plant(conversations[index], kind, rng, filler, tokenizer, args.max_seq_length)
            if changed:
                conversations[index] = changed
                truth[index] = kind
                planted += 1
    path = Path(tempfile.mkdtemp()) / "chat.jsonl"
    path.write_text(
        "".join(json.dumps({"messages": m}, ensure_ascii=False) + "\n" for m in conversations), encoding="utf-8"
    )
    dataset = load(path)
    assert len(dataset) == len(conversations) and not dataset.bad_lines, "the loader must keep every conversation"

    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from dataaudit.testing import FixedClusterPipeline

    # The two checks read only the dataset; the rest of the context is never computed.
    ctx = AuditContext(engine=LocalEngine(), dataset=dataset, embedder=HashingEmbedder(),
                       cluster_pipeline=FixedClusterPipeline(labels=np.zeros(len(dataset), dtype=np.int64)))
    results = {"turns": TurnsCheck().run(ctx), "length": LengthCheck(max_seq_length=args.max_seq_length).run(ctx)}
    print(
        f"{len(conversations)} conversations from {', '.join(SOURCES)}; {len(truth)} planted faults "
        f"({per_kind} per kind), budget {args.max_seq_length} tokens\n"
    )
    print(f"{'check / kind':<28}{'planted':>8}{'flagged':>9}{'precision':>11}{'recall':>8}")
    for check, kinds in (("turns", TURN_KINDS), ("length", LENGTH_KINDS)):
        findings = results[check].findings
        flagged = set(findings.get_column("row").to_list())
        precision, recall, planted = scores(flagged, {row for row, kind in truth.items() if kind in kinds})
        print(f"{check:<28}{planted:>8}{len(flagged):>9}{precision:>11.3f}{recall:>8.3f}")
        for kind in kinds:
            rows = set(findings.filter(findings["kind"] == kind).get_column("row").to_list())
            precision, recall, planted = scores(rows, {row for row, k in truth.items() if k == kind})
            print(f"  {kind:<26}{planted:>8}{len(rows):>9}{precision:>11.3f}{recall:>8.3f}")
    return conversations


def perturbed(conversations: list[list[dict]], rows: int, rng: random.Random) -> list[dict]:
    records = []
    for index in range(rows):
        messages = [dict(turn) for turn in conversations[index % len(conversations)]]
        spoken = next((i for i, m in enumerate(messages) if m["role"] != "system"), 0)
        messages[spoken]["content"] = f"{messages[spoken]['content']} (case {index}, {rng.choice(SYSTEMS)})"
        records.append({"messages": messages})
    return records


def speed_bench(args, conversations) -> None:
    from dataaudit.checks import make_checks
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from dataaudit.io.load import from_records
    from dataaudit.testing import FixedClusterPipeline

    rng = random.Random(args.seed)
    started = time.perf_counter()
    dataset = from_records(perturbed(conversations, args.rows, rng), skip_bad_lines=True)
    load_seconds = time.perf_counter() - started
    labels = np.random.default_rng(args.seed).integers(0, 50, size=len(dataset))
    ctx = AuditContext(
        engine=LocalEngine(),
        dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(labels=labels)
    )
    _ = ctx.clustering  # computed before the clocks start: the checks share it with the audit
    print(f"\n{len(dataset):,} rows (loading them: {load_seconds:.1f} s)")
    print("wall seconds depend on what else runs on the machine; CPU seconds count this process's threads")
    print(f"{'check':<12}{'wall s':>9}{'CPU s':>9}{'flagged':>9}")
    new_wall = new_cpu = 0.0
    tokens = 0
    for check in make_checks(
        {"turns": {}, "length": {"max_seq_length": args.max_seq_length}, "language": {}, "format": {}, "quality": {}}
    ):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = check.run(ctx)
        wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
        if check.name in ("turns", "length", "language"):
            new_wall, new_cpu = new_wall + wall, new_cpu + cpu
        if check.name == "length":
            tokens = int(result.rows.get_column("length_tokens").sum())
        print(f"{check.name:<12}{wall:>9.1f}{cpu:>9.1f}{result.summary.get('flagged', 0):>9,}")
    print(f"{'3 new checks':<12}{new_wall:>9.1f}{new_cpu:>9.1f}")
    print(f"(the rows hold {tokens:,} SmolLM2 tokens in all, {tokens / max(len(dataset), 1):.0f} a row)")


def compare_language_id() -> None:
    from bench.multilingual import LONG, SHORT

    texts = [text for _, text in LONG + SHORT]
    print(f"\nlanguage ID on {len(LONG)} long and {len(SHORT)} short written sentences, 12 languages")
    print(f"{'package':<22}{'load s':>8}{'ms/text':>9}{'long acc':>10}{'short acc':>11}")

    def report(name, load, predict):
        began = time.perf_counter()
        predicted = predict(texts * 5)[: len(texts)]
        per_text = (time.perf_counter() - began) * 1000 / (len(texts) * 5)
        long_acc = np.mean([p == c for p, (c, _) in zip(predicted, LONG)])
        short_acc = np.mean([p == c for p, (c, _) in zip(predicted[len(LONG) :], SHORT)])
        print(f"{name:<22}{load:>8.2f}{per_text:>9.2f}{long_acc:>10.3f}{short_acc:>11.3f}")

    began = time.perf_counter()
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    report("py3langid", time.perf_counter() - began, lambda batch: [identifier.classify(t)[0] for t in batch])
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        print("lingua-language-detector is not installed: pip install lingua-language-detector to compare")
        return
    for mode in ("low accuracy", "high accuracy"):
        began = time.perf_counter()
        builder = LanguageDetectorBuilder.from_all_languages()
        builder = builder.with_low_accuracy_mode() if mode == "low accuracy" else builder
        detector = builder.with_preloaded_language_models().build()
        report(
            f"lingua ({mode})",
            time.perf_counter() - began,
            lambda batch, detector=detector: [
                r.iso_code_639_1.name.lower() if r else None for r in detector.detect_languages_in_parallel_of(batch)
            ],
        )


def main() -> None:
    global REALDATA
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1500)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--rows", type=int, default=0, help="also time the checks on this many rows")
    parser.add_argument("--compare-language-id", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--realdata", type=Path, default=REALDATA, help="folder of the realdata sets (../shared/realdata)"
    )
    args = parser.parse_args()
    REALDATA = args.realdata
    from transformers import AutoTokenizer

    from dataaudit.features.tokens import gguf_tokenizer_dir
    from dataaudit.finetune.models import default_gguf

    # The planted truth comes from transformers' own tokenizer and template, not from the check's.
    reference = AutoTokenizer.from_pretrained(str(gguf_tokenizer_dir(default_gguf())), local_files_only=True)
    conversations = fault_bench(args, reference)
    if args.rows:
        speed_bench(args, conversations)
    if args.compare_language_id:
        compare_language_id()


if __name__ == "__main__":
    main()
