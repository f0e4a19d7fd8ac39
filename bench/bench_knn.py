"""kNN graph of a whole data set: pynndescent against faiss (IVF and HNSW) at equal recall@k.

The audit's two self-kNN graphs (prompts and prompt+response pairs, k = 30) cost a large share of
a big audit. This bench builds the graph of ``n`` real-text vectors each way and prints wall time,
CPU time and recall@k against exact neighbours of 2,000 random rows (brute force, so exact).

Vectors are those of ``bench_scale.py``'s pool of ~58k real instruction prompts (``--embedder
minilm`` through the default cache, or ``hashing``); past the pool, rows are its vectors plus
Gaussian noise (cosine ≈ 0.92 to their original), as in ``bench_scale.py precomputed``.

    python -m bench.bench_knn --rows 100000 1000000
    python -m bench.bench_knn --rows 200000 --methods pynndescent faiss-ivf

``--processes N`` measures what a new process pays before its first graph: numba compiles
pynndescent's kernels in every process, and dataaudit keeps those it can on disk
(:mod:`dataaudit.kernel_cache`). It runs the same build (clustered Gaussian vectors, 20,000 x 384 by
default, approximate even below ``exact_max_rows``) in N fresh processes one after another, against
one empty numba cache folder, with dataaudit's kernel cache off and then on, and prints each
process's time (wall and CPU: the machine may be busy) to its first graph and to a second one
(compiled by then):

    python -m bench.bench_knn --processes 2 --rows 20000

Measured (busy 2-core machine, one run): the second process's first graph took 36.6 CPU-s
(163.7 s wall) with the kernel cache off and 17.9 CPU-s (54.9 s wall) with it on; the graph
itself is ~2.5 CPU-s. Since the kernels given the distance as an argument are cached too (quiet
machine, old and new code back to back): off 42.4 s wall (43.7 CPU-s), on 9.4 s (10.7 CPU-s),
where the code before took 21.7 s (23.0 CPU-s) on. What still compiles is ``nn_descent`` and its
inner loop, which call ``numba.get_num_threads()`` and so cannot be cached.

``--exact-queries N`` times instead the exact search of N query rows (copies of random rows
with noise, as production prompts) against the ``--rows`` vectors, the coverage analysis's
search: float32 blocks (the code before) and bfloat16 screening with float32 rescoring (used
from ``SCREEN_MIN_REFERENCE`` rows on CPUs with native bfloat16), one after the other in one
process, and how far their neighbours agree:

    python -m bench.bench_knn --rows 1000000 --exact-queries 10000

faiss is not a dependency of dataaudit (``pip install faiss-cpu`` to run its rows). Measured here
at 200k rows (hashing vectors, a busy 2-core machine, one run): pynndescent 137 s wall / 64 CPU-s
at recall@30 0.980; faiss IVF-Flat (nlist 4·√n, nprobe 16) 162 s / 85 CPU-s at 0.877; faiss HNSW
(M 32, efConstruction 64, efSearch 64) 154 s / 84 CPU-s at 0.971. pynndescent stays. In a
second run, pynndescent's default 27 random-projection trees took 67.0 CPU-s (recall 0.9795) and
12 trees (``nnd-trees12``, now dataaudit's setting) 36.4 CPU-s (0.9803).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.bench_scale import JITTER, REALDATA, pool

os.environ.setdefault("HF_HUB_OFFLINE", "1")

METHODS = ("pynndescent", "faiss-ivf", "faiss-hnsw", "auto", "nnd-trees12", "nnd-trees12-iters8")


def vectors(rows: int, embedder_name: str, seed: int) -> np.ndarray:
    from dataaudit.embed import HashingEmbedder
    from dataaudit.runner import default_embedder

    records = pool()
    embedder = HashingEmbedder(dim=384) if embedder_name == "hashing" else default_embedder()
    base = np.asarray(embedder.embed([r["instruction"] for r in records]), dtype=np.float32)
    rng = np.random.default_rng(seed)
    origin = np.concatenate([rng.permutation(len(base)), rng.integers(0, len(base), max(0, rows - len(base)))])[:rows]
    out = base[origin]
    copies = np.arange(rows) >= len(base)
    out[copies] += rng.standard_normal((int(copies.sum()), base.shape[1]), dtype=np.float32) * (JITTER / np.sqrt(base.shape[1]))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _drop_self(candidates: np.ndarray, similarities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k of k + 1 neighbours: self where it was found, otherwise (a duplicate displaced it) the weakest."""
    n = len(candidates)
    is_self = candidates == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(is_self)
    keep[np.arange(n), drop] = False
    return candidates[keep].reshape(n, k), similarities[keep].reshape(n, k)


def _faiss_ivf_self(vectors: np.ndarray, *, k: int, seed: int, nprobe: int = 16):
    import faiss

    from dataaudit import neighbors

    n, d = vectors.shape
    nlist = max(1, int(4 * np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(vectors)
    index.add(vectors)
    index.nprobe = nprobe
    similarities, candidates = index.search(vectors, k + 1)
    candidates, similarities = _drop_self(candidates.astype(np.int64), similarities, k)
    return neighbors._fill_holes(neighbors._sorted_graph(candidates, 1.0 - similarities), vectors, vectors, exclude_self=True)


def _faiss_hnsw_self(vectors: np.ndarray, *, k: int, seed: int, m: int = 32):
    import faiss

    from dataaudit import neighbors

    d = vectors.shape[1]
    index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    index.hnsw.efSearch = max(64, 2 * k)
    similarities, candidates = index.search(vectors, k + 1)
    candidates, similarities = _drop_self(candidates.astype(np.int64), similarities, k)
    return neighbors._fill_holes(neighbors._sorted_graph(candidates, 1.0 - similarities), vectors, vectors, exclude_self=True)


def _nndescent_tuned(vectors: np.ndarray, *, k: int, seed: int, n_trees: int, n_iters: int | None):
    """pynndescent with fewer random-projection trees (its default grows to 55 at 1M rows) and iterations."""
    from pynndescent import NNDescent

    from dataaudit import neighbors

    index = NNDescent(vectors, metric="cosine", n_neighbors=k + 1, random_state=seed, n_trees=n_trees, n_iters=n_iters)
    candidates, distances = index.neighbor_graph
    candidates, similarities = _drop_self(np.asarray(candidates, dtype=np.int64), 1.0 - np.asarray(distances), k)
    return neighbors._fill_holes(neighbors._sorted_graph(candidates, 1.0 - similarities), vectors, vectors, exclude_self=True)


def build(method: str, data: np.ndarray, k: int, seed: int):
    from dataaudit import neighbors

    if method == "pynndescent":
        return neighbors._approximate_self(data, k=k, seed=seed, progress=neighbors.NULL_PROGRESS)
    if method.startswith("nnd-"):
        return _nndescent_tuned(data, k=k, seed=seed, n_trees=12, n_iters=8 if "iters8" in method else None)
    if method == "faiss-ivf":
        return _faiss_ivf_self(data, k=k, seed=seed)
    if method == "faiss-hnsw":
        return _faiss_hnsw_self(data, k=k, seed=seed)
    return neighbors.build_knn(data, k=k, seed=seed)


def recall(graph, data: np.ndarray, k: int, sample: np.ndarray) -> float:
    from dataaudit.neighbors import exact_knn

    truth = exact_knn(data[sample], data, k=k, self_rows=sample)
    # Ties at the k-th similarity make several answers right: count a found neighbour as right
    # when it is at least as similar as the k-th true one.
    found = graph.similarities[sample]
    return float(np.mean(found >= truth.similarities[:, -1:] - 1e-6))


def first_graph(rows: int, k: int, seed: int) -> dict:
    """In this process: seconds to the first approximate graph (compilation included) and to a second."""
    from dataaudit import neighbors
    from dataaudit.kernel_cache import persist_pynndescent_kernels

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, 384), dtype=np.float32)
    data = centres[rng.integers(0, len(centres), rows)] + 0.5 * rng.standard_normal((rows, 384), dtype=np.float32)
    times = []
    for run in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        neighbors._approximate_self(neighbors.unit_rows(data), k=k, seed=seed + run, progress=neighbors.NULL_PROGRESS)
        times += [round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)]
    return {"first_s": times[0], "first_cpu_s": times[1], "second_s": times[2], "second_cpu_s": times[3],
            "cached_kernels": persist_pynndescent_kernels()}


def processes(count: int, rows: int, k: int, seed: int) -> None:
    """``count`` fresh processes in a row per setting, each against the same new numba cache folder."""
    import json
    import subprocess
    import sys
    import tempfile

    from bench._common import REPO

    print(f"{os.cpu_count()} CPUs; {rows:,} x 384 vectors, k = {k}; one empty numba cache folder per setting")
    print("| kernel cache | process | first graph: wall s | CPU s | second graph: wall s | CPU s | kernels cached |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for setting in ("off", "on"):
        with tempfile.TemporaryDirectory() as folder:
            # NUMBA_CACHE_DIR holds pynndescent's own cache=True kernels too: all start cold.
            env = {**os.environ, "NUMBA_CACHE_DIR": folder, "DATAAUDIT_KERNEL_CACHE": setting,
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
            for process in range(1, count + 1):
                out = subprocess.run([sys.executable, "-m", "bench.bench_knn", "--worker", "--rows", str(rows), "--k", str(k),
                                      "--seed", str(seed)], check=True, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
                run = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {setting} | {process} | {run['first_s']:.1f} | {run['first_cpu_s']:.1f} | {run['second_s']:.1f} | "
                      f"{run['second_cpu_s']:.1f} | {run['cached_kernels']} |", flush=True)


def exact_queries(data: np.ndarray, queries: int, k: int, seed: int) -> None:
    """Float32 blocks against bfloat16 screening on one set of queries; both must find the same rows."""
    from dataaudit import neighbors
    from dataaudit.runtime import cpu_has_native_bfloat16

    rng = np.random.default_rng(seed + 1)
    query = data[rng.integers(0, len(data), queries)] + rng.standard_normal((queries, data.shape[1]), dtype=np.float32) * (
        JITTER / np.sqrt(data.shape[1]))
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    print(f"native bfloat16 products: {cpu_has_native_bfloat16()}")
    print("| rows | queries | search | wall s | CPU s |")
    print("|---:|---:|---|---:|---:|")
    graphs = {}
    saved = neighbors.SCREEN_MIN_REFERENCE
    for name, smallest in (("float32 blocks", len(data) + 1), ("bfloat16 screen + float32 rescoring", 0)):
        neighbors.SCREEN_MIN_REFERENCE = smallest
        wall, cpu = time.perf_counter(), time.process_time()
        graphs[name] = neighbors.exact_knn(query, data, k=k, self_rows=None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"| {len(data):,} | {queries:,} | {name} | {wall:.1f} | {cpu:.1f} |", flush=True)
    neighbors.SCREEN_MIN_REFERENCE = saved
    plain, screened = graphs.values()
    same_sets = np.mean([set(a) == set(b) for a, b in zip(plain.indices.tolist(), screened.indices.tolist())])
    print(f"rows whose {k} neighbours are the same set: {same_sets:.4%}; same order: "
          f"{np.mean((plain.indices == screened.indices).all(axis=1)):.4%}; largest similarity difference "
          f"{np.abs(plain.similarities - screened.similarities).max():.2e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS[:3]))
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=0, help="time to the first graph in this many fresh processes")
    parser.add_argument("--exact-queries", type=int, default=0, help="time the exact search of this many queries instead")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        import json

        print(json.dumps(first_graph(args.rows[0], args.k, args.seed)))
        return 0
    if args.processes:
        processes(args.processes, args.rows[0], args.k, args.seed)
        return 0
    if not REALDATA.exists():
        print(f"skipped: needs {REALDATA}")
        return 0
    print(f"{os.cpu_count()} CPUs; k = {args.k}; {args.embedder} vectors")
    if args.exact_queries:
        for rows in args.rows:
            exact_queries(vectors(rows, args.embedder, args.seed), args.exact_queries, args.k, args.seed)
        return 0
    print("| rows | method | wall s | CPU s | recall@k |")
    print("|---:|---|---:|---:|---:|")
    for rows in args.rows:
        data = vectors(rows, args.embedder, args.seed)
        sample = np.random.default_rng(args.seed).choice(rows, size=min(2_000, rows), replace=False)
        for method in args.methods:
            wall, cpu = time.perf_counter(), time.process_time()
            graph = build(method, data, args.k, args.seed)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"| {rows:,} | {method} | {wall:.1f} | {cpu:.1f} | {recall(graph, data, args.k, sample):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
