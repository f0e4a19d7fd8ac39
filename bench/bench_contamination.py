"""Benchmark the contamination check on real data with planted test items.

Scenario 1 (all seeded): a training set of GSM8K *train* problems (which share templates and
phrasing with the test split, the hard negatives) plus GPTeacher roleplay rows, with planted

- GSM8K test questions: verbatim, lightly edited (case, spacing, a typo, punctuation, a polite
  prefix), and wrapped inside longer prompts of our own wording;
- AlpacaEval instructions, most of them shorter than 13 words: verbatim and lightly edited.

The check runs with both benchmark files as eval sets (GSM8K test, AlpacaEval), through the
audit context exactly as ``dataaudit audit DATA --eval gsm8k_test.jsonl --eval alpaca_eval_805.jsonl``
runs it (clustering plays no part in this check, so it is skipped). Precision and recall are
per training row, beside plain 13-gram and 8-gram prompt overlap with any eval prompt.

Scenario 2: all 7,473 GSM8K train problems against the 1,319 test problems: they share
templates and phrasing, and every flag is a false positive.

Scenario 3: GPTeacher Codegen (4,535 instructions) against HumanEval. Many share a stock
phrase ("takes a string as input and returns") and none is the same task: every flag is a
false positive.

Run: ``python -m bench.bench_contamination [--base N]``. Embeddings come from
``dataaudit.runner.default_embedder()`` (MiniLM, on-disk cache). Skips when ../shared/realdata is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench._common import POLITE_PREFIXES, REALDATA, realdata_records, typo

SEED = 0

WRAPPERS = (
    ("I'm putting together a worksheet for my nephew and want to be sure the answer key is right. {q} "
    "Could you work through it step by step and explain each calculation?"),
    ("Here is a word problem from my homework that I keep getting wrong:\n\n{q}\n\nPlease show your reasoning clearly "
    "and give the final number on its own line."),
    ("You are a patient maths tutor. A student sends you the following exercise and asks for help. {q} "
    "Respond with a friendly explanation suitable for a twelve-year-old."),
    ("Context: we are testing a calculator app against textbook exercises. Exercise text follows. {q} "
    "Return only the numeric result after your working."),
)


def light_edit(text: str, rng: random.Random) -> str:
    """One to three light edits: case, spacing, a letter typo, punctuation, a polite prefix."""
    for edit in rng.sample(["case", "spacing", "typo", "punctuation", "prefix"], k=rng.randint(1, 3)):
        if edit == "case":
            text = text.lower() if rng.random() < 0.5 else text.upper()
        elif edit == "spacing":
            words = text.split(" ")
            position = rng.randrange(len(words))
            words[position] += " " * rng.randint(1, 2)
            text = " ".join(words) + rng.choice(["", " ", "\n"])
        elif edit == "typo":
            text = typo(text, rng)
        elif edit == "punctuation":
            # Dropping a decimal point would change a number (4.5 -> 45), so points between digits stay.
            if rng.random() < 0.5:
                text = re.sub(r"[?!,]|\.(?!\d)", "", text)
            else:
                text = text.rstrip("?.! ") + rng.choice(["??", "!", " ."])
        else:
            text = rng.choice(POLITE_PREFIXES) + text
    return text


def build(base: int, rng: random.Random) -> tuple[list[dict], np.ndarray, list[dict], list[dict]]:
    """Training records, what each planted one is ("" for clean rows), and the eval sets (GSM8K test, AlpacaEval)."""
    gsm = realdata_records("gsm8k.jsonl")
    train = [r for r in gsm if r["split"] == "train"]
    test = [r for r in gsm if r["split"] == "test"]
    alpaca = realdata_records("alpaca_eval_805.jsonl")
    roleplay = realdata_records("gpteacher_roleplay.jsonl")
    records = [{"prompt": r["question"], "completion": r["answer"]} for r in rng.sample(train, base)]
    records += [{"prompt": (r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")), "completion": r["output"]}
                for r in rng.sample(roleplay, base // 5)]
    # Planted rows answer briefly, so the prompt alone must reveal them (a copied answer would too).
    planted, kinds = [], []
    for index, item in enumerate(rng.sample(test, 300)):
        question = item["question"]
        if index < 100:
            prompt, kind = question, "GSM8K verbatim"
        elif index < 200:
            prompt, kind = light_edit(question, rng), "GSM8K light edit"
        else:
            prompt, kind = rng.choice(WRAPPERS).format(q=question), "GSM8K inside a longer prompt"
        planted.append({"prompt": prompt, "completion": f"The answer is {item['final_answer']}."})
        kinds.append(kind)
    short = [r for r in alpaca if len(re.findall(r"[^\W_]+", r["instruction"])) < 13]
    longer = [r for r in alpaca if len(re.findall(r"[^\W_]+", r["instruction"])) >= 13]
    for index, item in enumerate(rng.sample(short, 100) + rng.sample(longer, 50)):
        prompt = item["instruction"] if index % 2 == 0 else light_edit(item["instruction"], rng)
        planted.append({"prompt": prompt, "completion": "Happy to help! Here is what I would say."})
        length, edit = ("< 13" if index < 100 else ">= 13"), ("verbatim" if index % 2 == 0 else "light edit")
        kinds.append(f"AlpacaEval {length} words, {edit}")
    order = list(range(len(records) + len(planted)))
    rng.shuffle(order)
    combined = records + planted
    records = [combined[i] for i in order]
    categories = [""] * (len(combined) - len(planted)) + kinds
    planted_kind = np.array([categories[i] for i in order])
    gsm_test = [{"question": r["question"], "answer": r["answer"]} for r in test]
    alpaca_eval = [{"instruction": r["instruction"], "output": r["output"]} for r in alpaca]
    return records, planted_kind, gsm_test, alpaca_eval


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def run_check(train, eval_sets, embedder):
    from dataaudit.checks.contamination import ContaminationCheck
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.context import AuditContext
    from dataaudit.engine.local import LocalEngine

    ctx = AuditContext(engine=LocalEngine(), dataset=train, embedder=embedder, cluster_pipeline=ClusterPipeline(), eval_sets=eval_sets)
    ctx.embeddings("prompt"), ctx.embeddings("response")  # the audit computes these anyway; not the check's cost
    started = time.perf_counter()
    result = ContaminationCheck().run(ctx)
    return result, time.perf_counter() - started - ctx.timings.get("embed_eval", 0.0)


def ngram_baseline(train, eval_sets, n: int) -> np.ndarray:
    """Plain n-gram overlap: a training prompt sharing any n-gram with any eval prompt."""
    from dataaudit.features.ngrams import (
        ngram_hashes,
        shared_ngram_counts,
        token_arrays,
    )

    items = [prompt for dataset in eval_sets for prompt in dataset.prompts]
    rows, _, _ = shared_ngram_counts(ngram_hashes(token_arrays(train.prompts), n), ngram_hashes(token_arrays(items), n))
    flags = np.zeros(len(train), dtype=bool)
    flags[rows] = True
    return flags


def precision_recall(flags: np.ndarray, truth: np.ndarray) -> tuple[float, float, int]:
    hits = int((flags & truth).sum())
    return hits / max(int(flags.sum()), 1), hits / max(int(truth.sum()), 1), int(flags.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2500, help="GSM8K train rows in the training set")
    parser.add_argument("--show", type=int, default=5, help="misses and false flags to print")
    args = parser.parse_args()
    if not REALDATA.exists():
        print(f"skipped: {REALDATA} not found")
        return
    from dataaudit.io.load import load
    from dataaudit.runner import default_embedder

    rng = random.Random(SEED)
    embedder = default_embedder()
    records, planted_kind, gsm_test, alpaca_eval = build(args.base, rng)
    truth = planted_kind != ""
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        train = load(write_jsonl(folder / "train.jsonl", records), skip_bad_lines=True)
        eval_sets = (load(write_jsonl(folder / "gsm8k_test.jsonl", gsm_test), skip_bad_lines=True),
                     load(write_jsonl(folder / "alpaca_eval_805.jsonl", alpaca_eval), skip_bad_lines=True))
        result, seconds = run_check(train, eval_sets, embedder)
    flags = result.rows.get_column("is_contamination_issue").to_numpy()
    print(f"## Scenario 1: {len(train):,} training rows ({int(truth.sum())} planted: 300 GSM8K test, 150 AlpacaEval), "
          f"eval sets GSM8K test (1,319) + AlpacaEval (805); MiniLM embeddings\n")
    print("| method | precision | recall | flagged |")
    print("| --- | ---: | ---: | ---: |")
    methods = (("contamination check", flags), ("13-gram prompt overlap", ngram_baseline(train, eval_sets, 13)),
               ("8-gram prompt overlap", ngram_baseline(train, eval_sets, 8)))
    for name, method_flags in methods:
        p, r, k = precision_recall(method_flags, truth)
        print(f"| {name} | {p:.3f} | {r:.3f} | {k} |")
    print("\n| planted | rows | recall |")
    print("| --- | ---: | ---: |")
    for kind in sorted(set(planted_kind) - {""}):
        members = planted_kind == kind
        print(f"| {kind} | {int(members.sum())} | {flags[members].mean():.3f} |")
    kinds = result.findings.group_by("kind").len().sort("kind").iter_rows()
    print(f"\ncheck time (embedding the eval turns excluded): {seconds:.1f}s; findings by kind: {dict(kinds)}")
    print(f"per eval set: {json.dumps(result.summary['eval_sets'])}")
    prompts = train.prompts
    for label, indices in (("missed", np.flatnonzero(truth & ~flags)), ("false flag", np.flatnonzero(flags & ~truth))):
        for index in indices[: args.show]:
            print(f"  {label}: {prompts[index][:160]!r}")

    gsm = realdata_records("gsm8k.jsonl")
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        gsm_train = load(write_jsonl(folder / "gsm8k_train.jsonl", [{"question": r["question"], "answer": r["answer"]}
                                                                    for r in gsm if r["split"] == "train"]))
        gsm_eval = load(write_jsonl(folder / "gsm8k_test.jsonl", gsm_test))
    result, seconds = run_check(gsm_train, (gsm_eval,), embedder)
    print(f"\n## Scenario 2: all of GSM8K train ({len(gsm_train):,} rows) against GSM8K test ({len(gsm_eval):,}): "
          f"shared templates, other problems\n")
    print(f"false positives: {result.findings.height} (target 0); check time (embeddings excluded) {seconds:.1f}s; "
          f"13-gram overlap flags {int(ngram_baseline(gsm_train, (gsm_eval,), 13).sum())}, "
          f"8-gram {int(ngram_baseline(gsm_train, (gsm_eval,), 8).sum())}")
    for reason in result.findings.get_column("reason").head(args.show).to_list():
        print(f"  {reason[:200]}")

    codegen = load(REALDATA / "gpteacher_codegen.jsonl", skip_bad_lines=True)
    humaneval = load(REALDATA / "humaneval.jsonl", skip_bad_lines=True)
    result, seconds = run_check(codegen, (humaneval,), embedder)
    flagged = result.findings
    print(f"\n## Scenario 3: GPTeacher Codegen ({len(codegen):,} rows) against HumanEval ({len(humaneval)} items)\n")
    print(f"false positives: {flagged.height} (target 0); check time (embeddings excluded) {seconds:.1f}s; "
          f"13-gram overlap flags {int(ngram_baseline(codegen, (humaneval,), 13).sum())}, "
          f"8-gram {int(ngram_baseline(codegen, (humaneval,), 8).sum())}")
    for reason in flagged.get_column("reason").head(args.show).to_list():
        print(f"  {reason[:200]}")


if __name__ == "__main__":
    main()
