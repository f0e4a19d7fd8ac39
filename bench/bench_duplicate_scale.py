"""The duplicate check alone at 200k–1M rows, this checkout's against an older one, on one kNN graph.

Rows are ``bench_scale.py precomputed``'s (real instruction rows, then edited copies) with its
jittered MiniLM vectors; the prompt+response kNN graph is built once per size and kept in
``--graphs`` (an .npz per size), so both codes — and later runs — check the very same candidates.
Each code runs in its own process; the table gives wall time, this process's CPU time (the
engine's workers not counted), peak RSS, and whether the findings are identical (row, group,
kind, score). ``--profile DIR`` writes a cProfile of each check.

    git archive d43a540 dataaudit | tar -x -C /tmp/old
    python -m bench.bench_duplicate_scale --rows 200000 500000 --baseline /tmp/old --graphs /tmp/graphs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench._common import REALDATA, REPO

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DATAAUDIT_MEMORY_LIMIT", "off")


def check_once(rows: int, graphs: Path, seed: int, profile: Path | None) -> dict:
    """In this process: the rows, the cached (or new) graph, one timed duplicate check."""
    import numpy as np

    import dataaudit
    from bench.bench_scale import JITTER, pool, sized
    from dataaudit import from_records
    from dataaudit.checks.duplicate import DuplicateCheck
    from dataaudit.context import AuditContext
    from dataaudit.engine.local import LocalEngine
    from dataaudit.neighbors import KnnGraph
    from dataaudit.runner import default_embedder
    from dataaudit.testing import FixedClusterPipeline

    records = pool()
    embedder = default_embedder()
    data, origin = sized(records, rows, seed)
    dataset = from_records(data)
    del data
    path = graphs / f"pair-{rows}-{seed}.npz"

    def context(embeddings):
        return AuditContext(engine=LocalEngine(), dataset=dataset, embedder=embedder, embeddings=embeddings, seed=seed,
                            cluster_pipeline=FixedClusterPipeline(labels=[0] * rows))

    if not path.exists():
        prompts = [f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"] for r in records]
        rng = np.random.default_rng(seed)

        def jittered(base):
            vectors = base[np.asarray(origin)]
            copies = np.arange(rows) >= len(records)
            vectors[copies] += rng.standard_normal((int(copies.sum()), base.shape[1]), dtype=np.float32) * (
                JITTER / np.sqrt(base.shape[1]))
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

        embeddings = {"prompt": jittered(embedder.embed(prompts)),
                      "response": jittered(embedder.embed([r["output"] for r in records]))}
        graph = context(embeddings).knn("pair")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, indices=graph.indices, similarities=graph.similarities)
        del embeddings, graph
    ctx = context({})
    with np.load(path) as saved:
        ctx._knn["pair"] = KnnGraph(indices=saved["indices"], similarities=saved["similarities"])
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = DuplicateCheck().run(ctx)
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    findings = result.findings.select("row", "group", "kind", "score").sort("row")
    return {"rows": rows, "package": str(Path(dataaudit.__file__).parent), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
            "findings": findings.height, "findings_sha": hashlib.sha256(findings.write_csv().encode()).hexdigest()[:16],
            "summary": {k: v for k, v in result.summary.items() if isinstance(v, int)}}


def child(rows: int, graphs: Path, seed: int, profile: Path | None, source: Path | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*([str(source)] if source else []), str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    # As a file, not with -m from the checkout: -m would put the checkout's package first.
    command = [sys.executable, __file__, "--worker", "--rows", str(rows), "--graphs", str(graphs),
               "--seed", str(seed), *(["--profile", str(profile)] if profile else [])]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    run = json.loads(out.stdout.strip().splitlines()[-1])
    expected = (source or REPO) / "dataaudit"
    if Path(run["package"]).resolve() != expected.resolve():
        raise RuntimeError(f"measured {run['package']}, not {expected}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000])
    parser.add_argument("--graphs", type=Path, required=True, help="folder keeping each size's kNN graph")
    parser.add_argument("--baseline", type=Path, default=None, help="folder holding an older dataaudit package")
    parser.add_argument("--profile", type=Path, default=None, help="folder for cProfile files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(check_once(args.rows[0], args.graphs, args.seed, args.profile)))
        return 0
    if not REALDATA.exists():
        print(f"skipped: needs {REALDATA}")
        return 0
    print(f"{os.cpu_count()} CPUs")
    print("| rows | code | wall s | CPU s (this process) | peak RSS GB | findings | pairs diffed | same findings as old |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for rows in args.rows:
        runs = []
        for name, source in ([("old", args.baseline)] if args.baseline else []) + [("new", None)]:
            profile = args.profile / f"duplicate-{name}-{rows}.prof" if args.profile else None
            if profile:
                profile.parent.mkdir(parents=True, exist_ok=True)
            run = child(rows, args.graphs, args.seed, profile, source)
            runs.append(run)
            same = "-" if len(runs) == 1 else str(run["findings_sha"] == runs[0]["findings_sha"])
            print(f"| {rows:,} | {name} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | {run['peak_rss_gb']:.2f} | "
                  f"{run['findings']:,} | {run['summary'].get('checked_near_pairs', 0):,} | {same} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
