"""A full audit of CLINC150's in-scope train split (15,000 rows): time per stage, cold vs cached.

The cold run uses a fresh embedding cache; the second run reuses it, so it does no embedding
work. Prints a table of stage times for both runs and the embedding throughput of the cold run.
Usage: python -m bench.bench_audit_stages [--rows 15000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from bench._common import REALDATA, read_jsonl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=15_000)
    args = parser.parse_args()
    source = REALDATA / "clinc150_oos.jsonl"
    if not source.exists():
        print(f"skipped: {source} not found")
        return
    from dataaudit import audit, from_records
    from dataaudit.embed import CachingEmbedder, EmbeddingCache, SentenceTransformerEmbedder

    records = read_jsonl(source)
    train = [{"text": r["text"], "intent": r["intent"]} for r in records if r["split"] == "train" and r["intent"] != "oos"]
    dataset = from_records(train[: args.rows])
    texts = set(dataset.prompts) | set(dataset.responses)
    with tempfile.TemporaryDirectory() as cache_dir:
        runs = {}
        for name in ("cold", "cached"):
            embedder = CachingEmbedder(embedder=SentenceTransformerEmbedder(), cache=EmbeddingCache(directory=cache_dir))
            start = time.perf_counter()
            result = audit(dataset, embedder=embedder, seed=0)
            runs[name] = (time.perf_counter() - start, result.summary["timings"], result.summary)
    stages = sorted({stage for _, timings, _ in runs.values() for stage in timings if stage != "total"},
                    key=lambda stage: -runs["cold"][1].get(stage, 0))
    print(f"CLINC150 in-scope train, {len(dataset):,} rows ({len(texts):,} distinct texts to embed)")
    print(f"{'stage':<28}{'cold s':>10}{'cached s':>10}")
    for stage in stages:
        print(f"{stage:<28}{runs['cold'][1].get(stage, 0):>10.2f}{runs['cached'][1].get(stage, 0):>10.2f}")
    print(f"{'total (wall)':<28}{runs['cold'][0]:>10.2f}{runs['cached'][0]:>10.2f}")
    cold_embed = sum(v for k, v in runs["cold"][1].items() if k.startswith("embed"))
    print(f"cached / cold wall time: {runs['cached'][0] / runs['cold'][0]:.2f}")
    print(f"cold embedding: {cold_embed:.1f} s for {len(texts):,} texts = {len(texts) / max(cold_embed, 1e-9):.0f} texts/s")
    summary = runs["cold"][2]
    print(f"clusters {summary['clusters']['count']}, noise {summary['clusters']['noise_share']:.1%}, "
          f"flagged rows {summary['flagged_rows']:,}: {summary['issues_by_check']}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
