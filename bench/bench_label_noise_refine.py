"""Label noise: the audit alone, the audit refined by the encoder fine-tune, and cleanlab (issue 22).

    python -m bench.bench_label_noise_refine [--datasets trec_fine,banking77,clinc150] [--rows 2000]
                                             [--seed 0] [--epochs 3]

For each dataset: a random ``--rows`` subset of the training split (seeded; 2,000 by default, the
encoder backend's CPU budget), 5% of it flipped to a random other label (the planting of
``bench_label_noise``), then

- ``audit``: :func:`dataaudit.audit` with the conflict check on the cached MiniLM vectors
  (the real check: out-of-fold ridge-softmax blended with kNN votes, floored confident
  learning); the rows it flags at warning or above;
- ``audit + finetune --refine``: :func:`dataaudit.finetune.finetune` with ``backend="encoder"``,
  ``refine=True`` and ``max_examples`` = every row (so every row is sampled; the fine-tune
  still holds out 20% per cluster for its evaluation, but with ``refine`` never a row flagged
  for its label, so each has dynamics): rows whose ``still_flagged`` is true in ``row_verdicts``;
- ``cleanlab``: ``find_label_issues`` on the same blended out-of-fold probabilities the audit
  computes from the same vectors (``bench_label_noise.methods``).

Precision, recall and F1 against the planted flips. Below the table: how the flagged rows split
by verdict (confirmed / contradicted / no evidence) for true flips and for false alarms — why the
refinement gains what it gains. ``--keep DIR`` saves each dataset's dynamics and verdicts beside
the truth; ``--rescore DIR`` judges those saved dynamics again with the current verdict rule
(same subset, same flips, no training) — how a change to the rule is measured. Skips datasets whose file is absent (``DATAAUDIT_REALDATA``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from bench._common import offline
from bench.bench_label_noise import (
    DATASETS,
    FLIP_SHARE,
    flip,
    load_labelled,
    methods,
    require_cleanlab,
    scores,
    table,
)

offline()


def planted(name: str, rows: int, seed: int):
    """The seeded subset, its classes, true and noisy labels (``None`` when the file is absent)."""
    loaded = load_labelled(name)
    if loaded is None:
        print(f"skipped {name}: file not available", file=sys.stderr)
        return None
    texts, all_x, names = loaded
    subset = np.random.default_rng(seed).choice(len(names), min(rows, len(names)), replace=False)
    classes, y = np.unique(names[subset], return_inverse=True)
    return [texts[i] for i in subset], all_x[subset], classes, y, flip(y, len(classes), seed)


def run_dataset(name: str, rows: int, seed: int, epochs: int, keep: Path | None,
                rescore: Path | None) -> tuple[list[list], list[list]] | None:
    """Audit, fine-tune and score one dataset; with ``rescore`` the fine-tune's saved dynamics
    are judged again by the current :func:`row_verdicts` instead of training anew."""
    import polars as pl

    from dataaudit import audit
    from dataaudit.finetune.verdicts import row_verdicts
    from dataaudit.finetune_runner import finetune
    from dataaudit.io.load import from_records
    from dataaudit.neighbors import build_knn

    chosen = planted(name, rows, seed)
    if chosen is None:
        return None
    texts, x, classes, y, noisy = chosen
    truth = noisy != y
    started = time.perf_counter()
    if rescore is not None:
        saved = pl.read_parquet(rescore / f"{name}-verdicts.parquet")
        dynamics = (pl.read_parquet(rescore / f"{name}-dynamics.parquet").filter(pl.col("region").is_not_null())
                    .drop("flipped", "audit"))
        findings = saved.select("row", "check", "kind", pl.col("audit_score").alias("score"))
        verdicts = row_verdicts(findings, dynamics, refine=True)
        audit_flags = np.zeros(len(y), dtype=bool)
        audit_flags[findings.get_column("row").to_numpy()] = True
        note = f"{name}: rescored {rescore}"
    else:
        dataset = from_records([{"text": text, "label": str(classes[k])} for text, k in zip(texts, noisy)])
        audited = audit(dataset, checks=["conflict"], embeddings={"prompt": x}, seed=0)
        audit_flags = np.zeros(len(y), dtype=bool)
        audit_flags[audited.flagged_rows(min_severity="warning").get_column("row").to_numpy()] = True
        audit_seconds = time.perf_counter() - started
        result = finetune(dataset, audited, backend="encoder", max_examples=len(y), epochs=epochs, seed=seed,
                          refine=True)
        verdicts = result.row_verdicts
        if keep is not None:  # every row's dynamics and verdict beside the truth, to study other rules offline
            keep.mkdir(parents=True, exist_ok=True)
            truth_frame = pl.DataFrame({"row": np.arange(len(y)), "flipped": truth, "audit": audit_flags})
            result.dynamics.join(truth_frame, on="row", how="right").write_parquet(keep / f"{name}-dynamics.parquet")
            verdicts.join(truth_frame, on="row").write_parquet(keep / f"{name}-verdicts.parquet")
        note = (f"{name}: audit {audit_seconds:.0f}s, fine-tune {time.perf_counter() - started - audit_seconds:.0f}s "
                f"(train rows {result.summary['rows']['train']}, held out {result.summary['rows']['heldout']}; "
                f"stages {result.summary['timings']})")
    per_row = verdicts.group_by("row").agg(pl.col("still_flagged").all(), pl.col("verdict").first())
    refined = np.zeros(len(y), dtype=bool)
    refined[per_row.filter(pl.col("still_flagged")).get_column("row").to_numpy()] = True
    cleanlab = methods(x, noisy, len(classes), build_knn(x, k=30, seed=0), truth)["cleanlab find_label_issues"]

    size = f"{len(y):,}"
    records = [[name, size, len(classes), method, *(f"{v:.3f}" for v in scores(flags, truth)), int(flags.sum())]
               for method, flags in [("audit", audit_flags), ("audit + finetune --refine", refined),
                                     ("cleanlab find_label_issues", cleanlab)]]
    breakdown = []
    for verdict in ("confirmed", "contradicted", "no evidence"):
        rows_with = per_row.filter(pl.col("verdict") == verdict).get_column("row").to_numpy()
        breakdown.append([name, verdict, int(truth[rows_with].sum()), int((~truth[rows_with]).sum())])
    print(note, file=sys.stderr)
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
    parser.add_argument("--rescore", type=Path, help="judge a --keep folder's dynamics again instead of training")
    args = parser.parse_args()
    require_cleanlab()
    logging.basicConfig(level=logging.WARNING)
    records, breakdown = [], []
    for name in args.datasets.split(","):
        outcome = run_dataset(name, args.rows, args.seed, args.epochs, args.keep, args.rescore)
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
