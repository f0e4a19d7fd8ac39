"""Throughput of the default embedder on real instruction data, and what the cache saves.

    python -m bench.bench_embed --n 2000

Texts are a seeded mix of short intents/questions (CLINC150, Banking77, TREC) and long
prompt+response pairs (GSM8K, GPTeacher), the length spread where length-sorted batching
matters. "tokens" is the embedder as shipped (sorted by token count); "chars" sorts by
character count and "unsorted" keeps input order (each chunk embedded as one batch).
Each configuration runs once, so on a shared machine compare the CPU seconds too. Tokens are real (non-padding) tokens after truncation; "pad eff" is
real / (real + padding) tokens fed to the model. Skips when ../shared/realdata is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import REALDATA, iter_jsonl

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SOURCES = {
    "clinc150_oos.jsonl": lambda row: row["text"],
    "banking77.jsonl": lambda row: row["text"],
    "trec_qc.jsonl": lambda row: row["text"],
    "gsm8k.jsonl": lambda row: f"{row['question']}\n{row['answer']}",
    "gpteacher_roleplay.jsonl": lambda row: "\n".join(filter(None, [row["instruction"], row["input"], row["output"]])),
    "gpteacher_codegen.jsonl": lambda row: "\n".join(filter(None, [row["instruction"], row["input"], row["output"]])),
}


def load_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    per_source = -(-n // len(SOURCES))
    texts: list[str] = []
    for name, extract in SOURCES.items():
        rows = [extract(row) for row in iter_jsonl(REALDATA / name)]
        texts += rng.sample(rows, min(per_source, len(rows)))
    rng.shuffle(texts)
    return texts[:n]


def token_lengths(model, texts: list[str]) -> list[int]:
    encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length, add_special_tokens=True)
    return [len(ids) for ids in encoded["input_ids"]]


def padded_tokens(lengths: list[int], order: list[int], batch_size: int) -> int:
    return sum(
        len(batch) * max(lengths[i] for i in batch)
        for batch in (order[start : start + batch_size] for start in range(0, len(order), batch_size))
    )


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def timed_with_cpu(function) -> tuple[float, float]:
    """Wall and process CPU seconds: CPU time is less distorted on a shared machine."""
    cpu = time.process_time()
    wall = timed(function)
    return wall, time.process_time() - cpu


def cached_run_in_fresh_process(cache_dir: str, texts_file: str) -> tuple[float, bool, int]:
    code = (
        "import json, sys, time; start = time.perf_counter();"
        "from dataaudit.embed import CachingEmbedder, EmbeddingCache, SentenceTransformerEmbedder;"
        f"texts = json.load(open({texts_file!r}));"
        f"e = CachingEmbedder(embedder=SentenceTransformerEmbedder(), cache=EmbeddingCache(directory={cache_dir!r}));"
        "e.embed(texts); print(time.perf_counter() - start, 'torch' in sys.modules, e.misses_)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(output[0]), output[1] == "True", int(output[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of texts (default 2000)")
    parser.add_argument("--batch-sizes", default="16,32,64,128", help="batch sizes of the shipped embedder")
    parser.add_argument("--baseline-batch-sizes", default="64", help="batch sizes of chars/unsorted baselines")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not REALDATA.is_dir():
        print(f"skipped: {REALDATA} not found")
        return

    from dataaudit.embed import CachingEmbedder, EmbeddingCache, SentenceTransformerEmbedder

    texts = load_texts(args.n, args.seed)
    probe = SentenceTransformerEmbedder()
    load_seconds = timed(lambda: probe.embed(["warm up"]))
    model = probe.model_
    lengths = token_lengths(model, texts)
    real_tokens = sum(lengths)
    import torch

    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(
        f"{len(texts)} texts, {real_tokens} tokens (mean {real_tokens / len(texts):.1f}, max {max(lengths)}, "
        f"{sum(l >= model.max_seq_length for l in lengths)} truncated at {model.max_seq_length}); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; model load {load_seconds:.1f} s"
    )
    print(f"model_id {probe.model_id}\n")

    by_length = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    in_order = list(range(len(texts)))
    by_tokens = sorted(range(len(texts)), key=lambda i: -lengths[i])
    for batch_size in (32, 64, 128):
        efficiency = {
            name: real_tokens / padded_tokens(lengths, order, batch_size)
            for name, order in [("chars", by_length), ("tokens", by_tokens), ("unsorted", in_order)]
        }
        print(
            f"padding efficiency at batch {batch_size}: sorted by characters {efficiency['chars']:.3f}, "
            f"by token count {efficiency['tokens']:.3f}, unsorted {efficiency['unsorted']:.3f}"
        )
    print()
    header = f"{'batching':<10}{'batch':>6}{'seconds':>9}{'cpu s':>8}{'sent/s':>9}{'tok/s':>9}{'pad eff':>9}"
    print(header)
    print("-" * len(header))
    runs = [("tokens", int(b)) for b in args.batch_sizes.split(",")]
    baselines = [int(b) for b in args.baseline_batch_sizes.split(",")]
    runs += [(batching, b) for b in baselines for batching in ("chars", "unsorted")]
    for batching, batch_size in runs:
        embedder = SentenceTransformerEmbedder(batch_size=batch_size)
        embedder.model_ = model  # share the loaded weights; only batching differs
        if batching == "tokens":
            seconds, cpu = timed_with_cpu(lambda: embedder.embed(texts))
            padded = padded_tokens(lengths, by_tokens, batch_size)
        else:
            order = by_length if batching == "chars" else in_order
            chunks = [[texts[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
            seconds, cpu = timed_with_cpu(lambda: [embedder.embed(chunk) for chunk in chunks])
            padded = padded_tokens(lengths, order, batch_size)
        print(
            f"{batching:<10}{batch_size:>6}{seconds:>9.2f}{cpu:>8.1f}{len(texts) / seconds:>9.1f}"
            f"{real_tokens / seconds:>9.0f}{real_tokens / padded:>9.2f}"
        )

    print()
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = CachingEmbedder(embedder=probe, cache=EmbeddingCache(directory=cache_dir))
        cold_seconds = timed(lambda: cold.embed(texts))
        warm = CachingEmbedder(embedder=probe, cache=EmbeddingCache(directory=cache_dir))
        warm_seconds = timed(lambda: warm.embed(texts))
        edited = list(texts)
        for i in range(0, len(edited), 100):
            edited[i] = edited[i] + " (edited)"
        partial = CachingEmbedder(embedder=probe, cache=EmbeddingCache(directory=cache_dir))
        partial_seconds = timed(lambda: partial.embed(edited))
        texts_file = os.path.join(cache_dir, "texts.json")
        with open(texts_file, "w", encoding="utf-8") as handle:
            json.dump(texts, handle)
        fresh_seconds, torch_imported, fresh_misses = cached_run_in_fresh_process(cache_dir, texts_file)
        size = sum(p.stat().st_size for p in Path(cache_dir).rglob("shard-*.npy"))
    print(f"{'cache run':<46}{'seconds':>9}{'embedded':>10}")
    print("-" * 65)
    print(f"{'cold (embed all, write shard)':<46}{cold_seconds:>9.2f}{cold.misses_:>10}")
    print(f"{'cached re-run (new cache object, reads disk)':<46}{warm_seconds:>9.2f}{warm.misses_:>10}")
    print(f"{'1% of texts edited':<46}{partial_seconds:>9.2f}{partial.misses_:>10}")
    print(f"{'cached re-run, fresh process incl. imports':<46}{fresh_seconds:>9.2f}{fresh_misses:>10}")
    print(f"\ncache size {size / 1e6:.1f} MB; fresh cached process imported torch: {torch_imported}")


if __name__ == "__main__":
    main()
