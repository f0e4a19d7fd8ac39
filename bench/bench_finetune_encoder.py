"""Reference fine-tune, encoder backend, on real intent data with injected label flips.

banking77: 5% of the training labels flipped to another intent; the audit runs on the noisy
set; the untouched test split is the production file. Prints where the flipped rows land on
the data map, raw vs cleaned accuracy on the test split, and the confirmation table.

clinc: CLINC150 in-scope training rows; production = in-scope test rows plus the out-of-scope
(``oos``) queries, the traffic a narrow training set never saw: the evaluation gap in numbers.

    python -m bench.bench_finetune_encoder banking77 --max-examples 3000 --epochs 3
    python -m bench.bench_finetune_encoder clinc --max-examples 3000 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench._common import REALDATA, realdata_records

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def flip_labels(records: list[dict], rate: float, seed: int) -> set[int]:
    rng = random.Random(seed)
    labels = sorted({r["label"] for r in records})
    flipped = set(rng.sample(range(len(records)), int(round(rate * len(records)))))
    for index in flipped:
        records[index]["label"] = rng.choice([label for label in labels if label != records[index]["label"]])
    return flipped


def build(name: str, workdir: Path, flip_rate: float, seed: int) -> tuple[Path, Path, set[int]]:
    if name == "banking77":
        source = realdata_records("banking77.jsonl")
        train = [{"text": r["text"], "label": r["intent"]} for r in source if r["split"] == "train"]
        test = [{"text": r["text"], "label": r["intent"]} for r in source if r["split"] == "test"]
    else:
        source = realdata_records("clinc150_oos.jsonl")
        train = [{"text": r["text"], "label": r["intent"]} for r in source if r["split"] == "train" and r["intent"] != "oos"]
        test = [{"text": r["text"], "label": r["intent"]} for r in source if r["split"] == "test"]
    flipped = flip_labels(train, flip_rate, seed) if flip_rate > 0 else set()
    return write_jsonl(workdir / "train.jsonl", train), write_jsonl(workdir / "production.jsonl", test), flipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["banking77", "clinc"])
    parser.add_argument("--max-examples", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--flip-rate", type=float, default=None, help="default: 0.05 for banking77, 0 for clinc")
    parser.add_argument("--max-production", type=int, default=3000)
    parser.add_argument("--relabel", action="store_true")
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not REALDATA.exists():
        print(f"needs {REALDATA}", file=sys.stderr)
        return 2

    import polars as pl

    from dataaudit.finetune.encoder import EncoderBackend
    from dataaudit.finetune.engine import ReferenceFineTune
    from dataaudit.io.load import load
    from dataaudit.runner import audit, default_embedder

    flip_rate = args.flip_rate if args.flip_rate is not None else (0.05 if args.dataset == "banking77" else 0.0)
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        train_path, production_path, flipped = build(args.dataset, workdir, flip_rate, args.seed)
        dataset, production = load(train_path), load(production_path)
        started = time.perf_counter()
        result = audit(dataset, production=production, embedder=default_embedder(), seed=args.seed)
        audit_seconds = time.perf_counter() - started
        engine = ReferenceFineTune(backend=EncoderBackend(lora=args.lora), epochs=args.epochs,
                                   max_examples=args.max_examples, seed=args.seed, relabel=args.relabel,
                                   max_production=args.max_production)
        started = time.perf_counter()
        run = engine.run(dataset, result, production=production)
        finetune_seconds = time.perf_counter() - started

    summary = run.summary
    print(f"\n## {args.dataset}: {len(dataset):,} training rows, {flip_rate:.0%} labels flipped, "
          f"audit {audit_seconds:.1f} s, reference fine-tune {finetune_seconds:.1f} s "
          f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB)")
    print("rows:", json.dumps(summary["rows"]))
    print("timings:", json.dumps(summary["timings"]))
    if flipped:
        dynamics = run.dynamics.with_columns(pl.col("row").is_in(sorted(flipped)).alias("flipped"))
        print("\n| rows in training | n | hard-to-learn | ambiguous | easy | mean confidence |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, part in (("flipped", dynamics.filter(pl.col("flipped"))), ("clean", dynamics.filter(~pl.col("flipped")))):
            shares = {region: float((part["region"] == region).mean()) for region in ("hard-to-learn", "ambiguous", "easy-to-learn")}
            print(f"| {label} | {part.height:,} | {shares['hard-to-learn']:.1%} | {shares['ambiguous']:.1%} | "
                  f"{shares['easy-to-learn']:.1%} | {part['confidence'].mean():.3f} |")
        flagged = set(result.findings.filter(pl.col("check") == "conflict").get_column("row").to_list())
        in_train = set(run.dynamics.get_column("row").to_list())
        print(f"audit conflict flags on training rows: {len(flagged & in_train):,}, of which flipped "
              f"{len(flagged & in_train & flipped):,} (flipped in training: {len(flipped & in_train):,})")
    print("\n| experiment | train rows | seconds | held-out acc | production (test) acc |")
    print("|---|---:|---:|---:|---:|")
    for name, info in summary["experiments"].items():
        print(f"| {name} | {info.get('train_rows', '—')} | {info.get('seconds', '—')} | "
              f"{info['heldout']['accuracy']} | {info['production']['accuracy']} |")
    print("\nforgetting (paraphrase recall@1 by epoch, 0 = base):",
          ", ".join(f"{p['epoch']}: {p['score']:.3f}" for p in summary["forgetting"]))
    print("\n| finding | measurement | effect [95% CI] | verdict |")
    print("|---|---|---|---|")
    for row in summary["confirmation"]:
        interval = f"{row.get('effect')} [{row.get('ci_low')}, {row.get('ci_high')}]" if "effect" in row else "—"
        print(f"| {row['finding']} | {row['measurement']} | {interval} | {row['verdict']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
