"""Local vs Ray engine on the stages an engine runs: load, embed, kNN graph.

Rows are real instruction texts from ``../shared/realdata`` (CLINC150, Banking77, TREC queries
with their label as the response; GSM8K problems with worked solutions; GPTeacher code and
role-play tasks), repeated with a polite prefix and a copy number until there are ``--rows``
distinct rows. Embedding uses the :class:`~dataaudit.embed.HashingEmbedder` (384-d, the size
of MiniLM's vectors) so the figures measure the engine, not the model: with MiniLM the embed
stage is ~100x heavier and the per-call overhead correspondingly smaller in relative terms.

Stages per engine: ``load`` (``engine.load``, equal Datasets checked), ``embed`` (prompts;
equal vectors checked), ``knn`` (k=30). The local kNN graph at this size comes from
pynndescent (approximate); the Ray engine's is exact (blocks of queries over tasks) and,
with ``exact_max_rows`` below the size, bucketed; recall@30 of both against the exact graph
is printed. ``ray start`` overhead is reported apart.

    taskset -c 1 python -m bench.bench_engine --rows 100000 --cpus 1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import REALDATA, iter_jsonl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PREFIXES = ("Hi, ", "Quick question: ", "Please help: ", "Hello! ", "Can you help? ", "Urgent: ", "Hey - ")


def pool() -> list[dict[str, str]]:
    def rows(name: str):
        return iter_jsonl(REALDATA / name)

    records = []
    for name in ("clinc150_oos.jsonl", "banking77.jsonl"):
        records += [{"instruction": r["text"], "input": "", "output": r["intent"]} for r in rows(name)]
    records += [{"instruction": r["text"], "input": "", "output": r["label_fine"]} for r in rows("trec_qc.jsonl")]
    records += [{"instruction": r["question"], "input": "", "output": r["answer"]} for r in rows("gsm8k.jsonl")]
    for name in ("gpteacher_codegen.jsonl", "gpteacher_roleplay.jsonl"):
        records += [{"instruction": r["instruction"], "input": r["input"], "output": r["output"]} for r in rows(name)
                    if r["output"].strip()]
    return records


def write_rows(path: Path, rows: int, seed: int) -> None:
    records = pool()
    order = np.random.default_rng(seed).permutation(len(records))
    with open(path, "w", encoding="utf-8") as handle:
        for position in range(rows):
            lap, index = divmod(position, len(order))
            record = records[order[index]]
            if lap:
                record = {**record, "instruction": f"{PREFIXES[(lap + index) % len(PREFIXES)]}{record['instruction']} (#{lap})"}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def recall(graph, exact) -> float:
    hits = sum(len(set(a) & set(b)) for a, b in zip(graph.indices.tolist(), exact.indices.tolist()))
    return hits / exact.indices.size


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs of the local Ray cluster")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not REALDATA.exists():
        raise SystemExit(f"{REALDATA} is missing")

    import ray

    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine import LocalEngine, RayEngine

    embedder = HashingEmbedder(dim=384)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.jsonl"
        write_rows(path, args.rows, args.seed)
        size_mb = path.stat().st_size / 1e6
        _, ray_start = timed(lambda: ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
                                              logging_level="WARNING"))
        local, distributed = LocalEngine(), RayEngine(read_chunk_bytes=8 << 20, batch_size=2048)
        bucketed = RayEngine(exact_max_rows=0, probes=8)
        times: dict[str, dict[str, float]] = {"local": {}, "ray": {}}
        local_set, times["local"]["load"] = timed(lambda: local.load(path))
        ray_set, times["ray"]["load"] = timed(lambda: distributed.load(path))
        assert ray_set.frame.equals(local_set.frame)
        texts = local_set.prompts
        local_vectors, times["local"]["embed"] = timed(lambda: local.embed(embedder, texts))
        ray_vectors, times["ray"]["embed"] = timed(lambda: distributed.embed(embedder, texts))
        assert np.array_equal(local_vectors, ray_vectors)
        local_graph, times["local"]["knn"] = timed(lambda: local.knn(local_vectors, k=args.k, seed=args.seed))
        exact_graph, times["ray"]["knn"] = timed(lambda: distributed.knn(local_vectors, k=args.k, seed=args.seed))
        bucket_graph, bucket_time = timed(lambda: bucketed.knn(local_vectors, k=args.k, seed=args.seed))
        ray.shutdown()

    print(f"{args.rows:,} rows ({size_mb:.1f} MB JSONL), HashingEmbedder 384-d, k={args.k}, "
          f"Ray local cluster with {args.cpus} CPU(s); Ray start {ray_start:.1f}s (not in the totals)")
    print(f"{'stage':<8}{'local s':>10}{'ray s':>10}{'ray/local':>11}  notes")
    notes = {"load": "equal Datasets", "embed": "equal vectors",
             "knn": f"local {'exact' if args.rows <= 20_000 else 'pynndescent'} recall {recall(local_graph, exact_graph):.3f}; ray exact"}
    for stage in ("load", "embed", "knn"):
        a, b = times["local"][stage], times["ray"][stage]
        print(f"{stage:<8}{a:>10.1f}{b:>10.1f}{b / a:>11.2f}  {notes[stage]}")
    total_local, total_ray = sum(times["local"].values()), sum(times["ray"].values())
    print(f"{'total':<8}{total_local:>10.1f}{total_ray:>10.1f}{total_ray / total_local:>11.2f}")
    print(f"knn bucketed (ray, {round(args.rows ** 0.5)} buckets, 8 probes): {bucket_time:.1f}s, "
          f"recall@{args.k} vs exact {recall(bucket_graph, exact_graph):.3f}")


if __name__ == "__main__":
    main()
