"""Label noise: the audit alone, the audit refined by the encoder fine-tune, and cleanlab (issue 22).

    python bench/bench_label_noise_refine.py [--datasets trec_fine,banking77,clinc150] [--rows 2000]
                                             [--seed 0] [--epochs 3]

For each dataset: a random ``--rows`` subset of the training split (seeded; 2,000 by default, the
encoder backend's CPU budget), 5% of it flipped to a random other label (the planting of
``bench_label_noise``), then

- ``audit``: :func:`dataaudit.audit` with the conflict check on the cached MiniLM vectors
  (the real check: out-of-fold ridge-softmax blended with kNN votes, floored confident
  learning); the rows it flags at warning or above;
- ``audit + finetune --refine``: :func:`dataaudit.finetune.finetune` with ``backend="encoder"``,
  ``refine=True`` and ``max_examples`` = every row (so every row is sampled; the fine-tune
  still holds out 20% per cluster for its evaluation, and flagged rows held out keep their
  flag for want of dynamics): rows whose ``still_flagged`` is true in ``row_verdicts``;
- ``cleanlab``: ``find_label_issues`` on the same blended out-of-fold probabilities the audit
  computes from the same vectors (``bench_label_noise.methods``).

Precision, recall and F1 against the planted flips. Below the table: how the flagged rows split
by verdict (confirmed / contradicted / no evidence) for true flips and for false alarms — why the
refinement gains what it gains. Skips datasets whose file is absent (``DATAAUDIT_REALDATA``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_label_noise import DATASETS, FLIP_SHARE, REALDATA, flip, methods, scores, table  # noqa: E402


def load(name: str) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """Training-split texts, their MiniLM vectors (cached) and label names."""
    from bench.bench_coverage_banking import cached_vectors, load_rows

    file, field = DATASETS[name]
    path = REALDATA / file
    if not path.exists():
        return None
    rows = load_rows(path)
    vectors = cached_vectors(path, [row["text"] for row in rows])
    keep = np.array([row["split"] == "train" and row[field] != "oos" for row in rows])
    texts = [row["text"] for row, kept in zip(rows, keep) if kept]
    return texts, vectors[keep], np.array([row[field] for row in rows])[keep]


def run_dataset(name: str, rows: int, seed: int, epochs: int, keep: Path | None) -> tuple[list[list], list[list]] | None:
    import polars as pl

    from dataaudit import audit
    from dataaudit.finetune.api import finetune
    from dataaudit.io.load import from_records
    from dataaudit.neighbors import build_knn

    loaded = load(name)
    if loaded is None:
        print(f"skipped {name}: file not available", file=sys.stderr)
        return None
    texts, all_x, names = loaded
    subset = np.random.default_rng(seed).choice(len(names), min(rows, len(names)), replace=False)
    classes, y = np.unique(names[subset], return_inverse=True)
    x = all_x[subset]
    n_classes = len(classes)
    noisy = flip(y, n_classes, seed)
    truth = noisy != y
    started = time.perf_counter()
    dataset = from_records([{"text": texts[i], "label": str(classes[k])} for i, k in zip(subset, noisy)])
    audited = audit(dataset, checks=["conflict"], embeddings={"prompt": x}, seed=0)
    flagged_findings = audited.flagged_rows(min_severity="warning")
    audit_flags = np.zeros(len(y), dtype=bool)
    audit_flags[flagged_findings.get_column("row").to_numpy()] = True
    audit_seconds = time.perf_counter() - started
    result = finetune(dataset, audited, backend="encoder", max_examples=len(y), epochs=epochs, seed=seed,
                      refine=True)
    finetune_seconds = time.perf_counter() - started - audit_seconds
    if keep is not None:  # every row's dynamics and verdict beside the truth, to study other rules offline
        keep.mkdir(parents=True, exist_ok=True)
        planted = pl.DataFrame({"row": np.arange(len(y)), "flipped": truth, "audit": audit_flags})
        result.dynamics.join(planted, on="row", how="right").write_parquet(keep / f"{name}-dynamics.parquet")
        result.row_verdicts.join(planted, on="row").write_parquet(keep / f"{name}-verdicts.parquet")
    verdicts = result.row_verdicts.group_by("row").agg(pl.col("still_flagged").all(), pl.col("verdict").first())
    refined = np.zeros(len(y), dtype=bool)
    kept = verdicts.filter(verdicts.get_column("still_flagged"))
    refined[kept.get_column("row").to_numpy()] = True
    cleanlab = methods(x, noisy, n_classes, build_knn(x, k=30, seed=0), truth)["cleanlab find_label_issues"]

    size = f"{len(y):,}"
    records = [[name, size, n_classes, method, *(f"{v:.3f}" for v in scores(flags, truth)), int(flags.sum())]
               for method, flags in [("audit", audit_flags), ("audit + finetune --refine", refined),
                                     ("cleanlab find_label_issues", cleanlab)]]
    breakdown = []
    for verdict in ("confirmed", "contradicted", "no evidence"):
        rows_with = verdicts.filter(verdicts.get_column("verdict") == verdict).get_column("row").to_numpy()
        breakdown.append([name, verdict, int(truth[rows_with].sum()), int((~truth[rows_with]).sum())])
    print(f"{name}: audit {audit_seconds:.0f}s, fine-tune {finetune_seconds:.0f}s "
          f"(train rows {result.summary['rows']['train']}, held out {result.summary['rows']['heldout']}; "
          f"stages {result.summary['timings']})", file=sys.stderr)
    print(table(["dataset", "rows", "classes", "method", "precision", "recall", "F1", "flagged"], records),
          file=sys.stderr)
    return records, breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--rows", type=int, default=2000, help="random subset of each training split (the encoder budget)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3, help="encoder fine-tune epochs (the backend's budget: 3)")
    parser.add_argument("--keep", type=Path, help="folder for each dataset's dynamics and verdicts with the truth")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    records, breakdown = [], []
    for name in args.datasets.split(","):
        outcome = run_dataset(name, args.rows, args.seed, args.epochs, args.keep)
        if outcome is not None:
            records += outcome[0]
            breakdown += outcome[1]
    print(f"Label flips at {FLIP_SHARE:.0%}, {args.rows:,}-row subsets of the training splits, seed {args.seed}, "
          f"encoder fine-tune {args.epochs} epochs")
    print(table(["dataset", "rows", "classes", "method", "precision", "recall", "F1", "flagged"], records))
    print()
    print("Audit-flagged rows by fine-tune verdict")
    print(table(["dataset", "verdict", "planted flips", "false alarms"], breakdown))


if __name__ == "__main__":
    main()
