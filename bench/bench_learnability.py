"""Mismatched pairs: does the learnability check find responses shuffled between rows?

For each real instruction set (GPTeacher codegen, Code Alpaca, GSM8K) a seeded sample of rows
gets 3% of its responses rotated among themselves (each planted row carries another planted
row's response), then the learnability check scores every row with the bundled SmolLM2-135M.
Prints the IFD distribution of matched and shuffled pairs, precision and recall at the default
threshold and at the definition's 1.0, and the throughput on this machine.

    nice -n 10 python bench/bench_learnability.py --rows 200 --threads 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
DATASETS = {
    "gpteacher_codegen": ("gpteacher_codegen.jsonl", lambda r: (_alpaca_prompt(r), r["output"])),
    "code_alpaca": ("code_alpaca_2k.jsonl", lambda r: (_alpaca_prompt(r), r["output"])),
    "gsm8k": ("gsm8k.jsonl", lambda r: (r["question"], r["answer"])),
}


def _alpaca_prompt(record: dict) -> str:
    return f"{record['instruction']}\n\n{record['input']}" if record.get("input") else record["instruction"]


def planted_sample(name: str, rows: int, rate: float, seed: int) -> tuple[list[dict], np.ndarray]:
    """``rows`` sampled records with ``rate`` of them given another planted row's response."""
    file, convert = DATASETS[name]
    pairs = []
    with open(REALDATA / file, encoding="utf-8") as handle:
        for line in handle:
            prompt, response = convert(json.loads(line))
            if prompt.strip() and response.strip():
                pairs.append((prompt, response))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pairs), size=min(rows, len(pairs)), replace=False)
    sample = [pairs[i] for i in chosen]
    planted = np.sort(rng.choice(len(sample), size=max(2, round(rate * len(sample))), replace=False))
    donors = np.roll(planted, 1)
    responses = [r for _, r in sample]
    for target, donor in zip(planted, donors):
        responses[target] = sample[donor][1]
    records = [{"prompt": p, "completion": r} for (p, _), r in zip(sample, responses)]
    return records, planted


def precision_recall(flags: np.ndarray, planted: np.ndarray) -> tuple[float, float]:
    truth = np.zeros(len(flags), dtype=bool)
    truth[planted] = True
    hits = int((flags & truth).sum())
    return hits / max(int(flags.sum()), 1), hits / max(int(truth.sum()), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200, help="rows sampled per dataset")
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--dump", type=Path, default=None, help="write every row's losses here (JSONL)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import torch

    from dataaudit.checks.learnability import LearnabilityCheck, LearnabilityScorer, flag_mismatched, ifd
    from dataaudit.io.load import from_records

    # The check's own scorer with the check's defaults; one model load for every dataset.
    check = LearnabilityCheck()
    started = time.perf_counter()
    scorer = LearnabilityScorer(model=check.model, max_length=check.max_length,
                                max_response_tokens=check.max_response_tokens, batch_size=check.batch_size)
    scorer.load()
    torch.set_num_threads(args.threads)  # load_causal_lm takes every core; this CPU is shared
    print(f"model loaded in {time.perf_counter() - started:.1f} s; torch threads {torch.get_num_threads()}")

    table = []
    all_flags, all_truth = [], []
    for name in args.datasets.split(","):
        records, planted = planted_sample(name, args.rows, args.rate, args.seed)
        frame = from_records(records).frame
        prompts, responses = frame.get_column("prompt").to_list(), frame.get_column("response").to_list()
        clock = time.perf_counter()
        conditioned, alone = scorer.losses(prompts, frame.get_column("system").to_list(), responses)
        seconds = time.perf_counter() - clock
        ratio = ifd(conditioned, alone)
        truth = np.zeros(len(ratio), dtype=bool)
        truth[planted] = True
        tokenizer = scorer.load().tokenizer_
        lengths = [len(tokenizer(p)["input_ids"]) + len(tokenizer(r)["input_ids"]) for p, r in zip(prompts, responses)]
        p_def, r_def = precision_recall(flag_mismatched(ratio, check.threshold), planted)
        p_one, r_one = precision_recall(flag_mismatched(ratio, 1.0), planted)
        table.append((name, len(ratio), len(planted), np.percentile(ratio[~truth], [50, 95, 99]).round(3).tolist(),
                      float(ratio[~truth].max()), np.sort(ratio[truth]).round(3).tolist(), p_def, r_def, p_one, r_one,
                      len(ratio) / seconds, int(np.median(lengths))))
        all_flags.append(flag_mismatched(ratio, check.threshold))
        all_truth.append(truth)
        if args.dump:
            with args.dump.open("a", encoding="utf-8") as out:
                for i in range(len(ratio)):
                    out.write(json.dumps({"dataset": name, "i": i, "planted": bool(truth[i]), "ifd": ratio[i],
                                          "with_prompt": conditioned[i], "alone": alone[i]}) + "\n")
        print(f"{name}: {len(ratio)} rows in {seconds:.1f} s ({len(ratio) / seconds:.2f} rows/s, "
              f"median {int(np.median(lengths))} tokens per pair)", flush=True)

    print(f"\nthreshold {check.threshold} (default) and 1.0; rate {args.rate}, seed {args.seed}, {args.threads} thread(s)")
    print("| dataset | rows | planted | matched IFD p50/p95/p99 | matched max | shuffled IFD (sorted) | "
          "P@default | R@default | P@1.0 | R@1.0 | rows/s | median tokens |")
    print("|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for (name, n, k, pct, top, shuffled, pd, rd, po, ro, speed, tokens) in table:
        print(f"| {name} | {n} | {k} | {pct} | {top:.3f} | {shuffled} | {pd:.2f} | {rd:.2f} | {po:.2f} | {ro:.2f} | "
              f"{speed:.2f} | {tokens} |")
    flags, truth = np.concatenate(all_flags), np.concatenate(all_truth)
    hits = int((flags & truth).sum())
    print(f"\nall: precision {hits / max(int(flags.sum()), 1):.3f}, recall {hits / max(int(truth.sum()), 1):.3f} "
          f"({hits} of {int(truth.sum())} planted found, {int(flags.sum()) - hits} false alarm(s))")


if __name__ == "__main__":
    main()
