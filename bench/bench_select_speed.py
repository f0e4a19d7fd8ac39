"""How long the default selection's arithmetic takes: quotas + facility location per cluster.

Synthetic unit vectors (384-d, like MiniLM) in clusters of uneven size; the budget is a share of
the rows. Embedding is not timed (the audit's cache serves it).

    nice -n 10 python bench/bench_select_speed.py --rows 20000 --clusters 50 --budget 0.2
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--budget", type=float, default=0.2)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()

    from dataaudit.selection.diversity import allocate, facility_location

    rng = np.random.default_rng(0)
    sizes = rng.dirichlet(np.ones(args.clusters) * 0.7) * args.rows
    cluster_of = np.repeat(np.arange(args.clusters), np.maximum(1, sizes.astype(int)))[: args.rows]
    centres = rng.standard_normal((args.clusters, args.dim)).astype(np.float32)
    vectors = centres[cluster_of] + 0.8 * rng.standard_normal((len(cluster_of), args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    capacity = np.bincount(cluster_of, minlength=args.clusters)
    budget = int(args.budget * len(cluster_of))
    started = time.perf_counter()
    quota = allocate(budget, capacity / capacity.sum(), capacity)
    picked = 0
    for cluster in range(args.clusters):
        members = np.flatnonzero(cluster_of == cluster)
        picks, _ = facility_location(vectors[members], int(quota[cluster]), seed=cluster)
        picked += len(picks)
    seconds = time.perf_counter() - started
    print(f"{len(cluster_of):,} rows, {args.clusters} clusters (largest {capacity.max():,}), budget {budget:,}: "
          f"{picked:,} picked in {seconds:.1f} s ({len(cluster_of) / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
