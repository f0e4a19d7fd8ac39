"""Loading speed: 100k JSONL records (realdata concatenated and lightly perturbed).

Prints records/s for load(), profile_dataset() and a full export partition.
Usage: python -m bench.bench_load [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from bench._common import REALDATA, iter_jsonl

SOURCES = ["gsm8k.jsonl", "gpteacher_codegen.jsonl", "gpteacher_roleplay.jsonl", "self_instruct_seed_tasks.jsonl"]


def build(path: Path, rows: int, seed: int = 0) -> int:
    """Alpaca-format records: GSM8K mapped to instruction/output, GPTeacher and Self-Instruct as they are."""
    rng = random.Random(seed)
    pool = []
    for name in SOURCES:
        for record in iter_jsonl(REALDATA / name):
            if "question" in record:
                record = {"instruction": record["question"], "input": "", "output": record["answer"]}
            pool.append({"instruction": record["instruction"], "input": record.get("input", ""), "output": record["output"]})
    with path.open("w", encoding="utf-8") as handle:
        for index in range(rows):
            record = dict(pool[index % len(pool)])
            if index >= len(pool):
                record["instruction"] = f"{record['instruction']} (variant {rng.randint(0, 10**6)})"
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    if not REALDATA.exists():
        print(f"skipped: {REALDATA} not found")
        return
    from dataaudit.io.load import load
    from dataaudit.io.writers import write_partition
    from dataaudit.profile import profile_dataset

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        size = build(path, args.rows)
        timings = {}
        start = time.perf_counter()
        dataset = load(path)
        timings["load"] = time.perf_counter() - start
        start = time.perf_counter()
        profile_dataset(dataset)
        timings["profile (inspect)"] = time.perf_counter() - start
        start = time.perf_counter()
        write_partition(dataset, clean=Path(tmp) / "clean.jsonl", rejected=Path(tmp) / "rejected.jsonl",
                        drops={row: ["bench"] for row in range(0, args.rows, 10)})
        timings["export partition"] = time.perf_counter() - start
        identical = (Path(tmp) / "clean.jsonl").stat().st_size
    print(f"{args.rows:,} records, {size / 1e6:.1f} MB (alpaca JSONL)")
    print(f"{'stage':<20} {'seconds':>8} {'records/s':>12}")
    for stage, seconds in timings.items():
        print(f"{stage:<20} {seconds:>8.2f} {args.rows / seconds:>12,.0f}")
    print(f"clean.jsonl: {identical / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
