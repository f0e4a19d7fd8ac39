"""Does `select` beat a random subset of the same size? Encoder fine-tunes on real intent data.

For Banking77 and CLINC150 (in-scope): a seeded sample of the training split with 5% of labels
flipped and 5% of rows duplicated (planted), audited (MiniLM, checks duplicate, conflict,
quality, outlier); the test split is the production sample. `select` picks 20% of the cleaned
pool (default strategy, quotas weighted by production), then `verify_selection` trains the
encoder on the selection, on a random 20% of the same pool and on the whole pool (same seed and
epochs) and prints selected − random and selected − full with paired 95% intervals and verdicts,
on held-out, production and the general probe (forgetting).

    nice -n 10 python bench/bench_select.py --datasets banking77,clinc --rows 2500 --seeds 0,1

The causal-LM case, at the CPU budget (300 rows, 2 epochs, SmolLM2 LoRA), on GSM8K with 5% copies
planted (checks add ``format``), scored on losses and the general probe:

    nice -n 10 python -m bench.bench_select --datasets gsm8k --backend causal-lm --rows 300 \
        --production-rows 100 --max-production 100 --epochs 0 --no-full --seeds 0
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import time
from pathlib import Path

from bench._common import offline, realdata_records

offline()


def write_jsonl(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def build_gsm8k(workdir: Path, rows: int, production_rows: int, seed: int) -> tuple[Path, Path]:
    """GSM8K train problems with 5% planted copies (the causal-LM case); production = test problems."""
    source = realdata_records("gsm8k.jsonl")
    pairs = lambda split: [{"prompt": r["question"], "response": r["answer"]} for r in source if r["split"] == split]  # noqa: E731
    rng = random.Random(seed)
    train = rng.sample(pairs("train"), rows)
    train += [dict(train[i]) for i in rng.sample(range(len(train)), int(round(0.05 * len(train))))]
    rng.shuffle(train)
    test = rng.sample(pairs("test"), production_rows)
    return write_jsonl(workdir / "gsm8k_train.jsonl", train), write_jsonl(workdir / "gsm8k_test.jsonl", test)


def build(name: str, workdir: Path, rows: int, production_rows: int, seed: int) -> tuple[Path, Path]:
    if name == "gsm8k":
        return build_gsm8k(workdir, rows, production_rows, seed)
    if name == "banking77":
        source = realdata_records("banking77.jsonl")
        in_scope = lambda r: True  # noqa: E731
    else:
        source = realdata_records("clinc150_oos.jsonl")
        in_scope = lambda r: r["intent"] != "oos"  # noqa: E731
    train = [{"text": r["text"], "label": r["intent"]} for r in source if r["split"] == "train" and in_scope(r)]
    test = [{"text": r["text"], "label": r["intent"]} for r in source if r["split"] == "test" and in_scope(r)]
    rng = random.Random(seed)
    train = rng.sample(train, min(rows, len(train)))
    labels = sorted({r["label"] for r in train})
    for index in rng.sample(range(len(train)), int(round(0.05 * len(train)))):
        train[index]["label"] = rng.choice([label for label in labels if label != train[index]["label"]])
    train += [dict(train[i]) for i in rng.sample(range(len(train)), int(round(0.05 * len(train))))]
    rng.shuffle(train)
    test = rng.sample(test, min(production_rows, len(test)))
    return write_jsonl(workdir / f"{name}_train.jsonl", train), write_jsonl(workdir / f"{name}_test.jsonl", test)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="banking77,clinc")
    parser.add_argument("--rows", type=int, default=2500)
    parser.add_argument("--production-rows", type=int, default=1000)
    parser.add_argument("--budget", default="20%")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", choices=["encoder", "causal-lm"], default="encoder",
                        help="causal-lm: SmolLM2 LoRA (use --datasets gsm8k); --epochs 0 takes its CPU budget")
    parser.add_argument("--no-full", action="store_true", help="skip the full-pool run (the causal LM on a CPU)")
    parser.add_argument("--max-production", type=int, default=500, help="production rows each run is scored on")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("dataaudit.selection").setLevel(logging.INFO)

    import torch

    import dataaudit
    from dataaudit.finetune.causal_lm import CausalLMBackend
    from dataaudit.finetune.encoder import EncoderBackend
    from dataaudit.selection import select
    from dataaudit.selection.verify import verify_selection

    torch.set_num_threads(args.threads)
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-select-") as scratch:
        for name in args.datasets.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                started = time.perf_counter()
                train, test = build(name, Path(scratch), args.rows, args.production_rows, seed)
                checks = ["duplicate", "conflict", "quality", "outlier"] + (["format"] if name == "gsm8k" else [])
                audit = dataaudit.audit(train, production=test, checks=checks, seed=seed)
                audited = time.perf_counter()
                selection = select(train, audit, budget=args.budget, production=test, seed=seed)
                backend = EncoderBackend() if args.backend == "encoder" else CausalLMBackend()
                result = verify_selection(train, audit, selection.rows, production=test, backend=backend,
                                          epochs=args.epochs or None, seed=seed, include_full=not args.no_full,
                                          max_production=args.max_production)
                torch.set_num_threads(args.threads)
                print(f"\n## {name}, seed {seed}: {selection.summary['budget']} selected of a "
                      f"{selection.summary['pool']}-row pool ({selection.summary['flagged']} flagged); audit "
                      f"{audited - started:.0f} s, select + {len(result.runs)} fine-tunes {time.perf_counter() - audited:.0f} s",
                      flush=True)
                print(result.runs)
                for row in result.comparisons.iter_rows(named=True):
                    needed = f" (needs ~{row['rows_factor_needed']:.0f}x rows)" if row["rows_factor_needed"] else ""
                    line = (f"| {name} | {seed} | {row['comparison']} | {row['set']} | {row['metric']} | "
                            f"{row['effect']:+.4f} | [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] | {row['n']} | "
                            f"{row['verdict']}{needed} |")
                    lines.append(line)
                    print(line, flush=True)
    print("\n| dataset | seed | comparison | set | metric | effect | 95% CI | rows | verdict |")
    print("|---|---|---|---|---|---:|---|---:|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
