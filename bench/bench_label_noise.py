"""Label noise found by the audit alone: planted 5% flips on TREC fine, Banking77 and CLINC150.

    python bench/bench_label_noise.py [--seeds 0,1,2] [--datasets trec_fine,banking77,clinc150]

5% of the training rows get a random other label (seeded). Each method sees the same MiniLM
vectors (cached, see bench_coverage_banking.cached_vectors) and the same kNN graph (k = 30, the
audit's default) and flags rows; precision, recall and F1 against the planted flips, mean over
seeds:

- ``today``: the conflict check's confident learning as it runs in an audit — out-of-fold
  ridge-softmax blended 50/50 with kNN label votes, :func:`confident_label_issues`;
- ``cleanlab``: cleanlab's ``find_label_issues`` (default filter) and with ``filter_by="both"``,
  on the same blended out-of-fold probabilities;
- ``frontier @ today's recall``: the best precision *any* cut of today's ranking (lowest
  self-confidence first) reaches at today's recall — what per-class thresholds or a better
  count of errors could gain without better probabilities.

Skips datasets whose file is absent from ../shared/realdata (``DATAAUDIT_REALDATA`` overrides).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REALDATA = Path(os.environ.get("DATAAUDIT_REALDATA", REPO.parent / "shared" / "realdata"))
#: name -> (file, label field, rows kept: training split, in-scope)
DATASETS = {
    "trec_fine": ("trec_qc.jsonl", "label_fine"),
    "banking77": ("banking77.jsonl", "intent"),
    "clinc150": ("clinc150_oos.jsonl", "intent"),
}
FLIP_SHARE = 0.05


def load(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    from bench.bench_coverage_banking import cached_vectors, load_rows

    file, field = DATASETS[name]
    path = REALDATA / file
    if not path.exists():
        return None
    rows = load_rows(path)
    vectors = cached_vectors(path, [row["text"] for row in rows])
    keep = np.array([row["split"] == "train" and row[field] != "oos" for row in rows])
    labels = np.array([row[field] for row in rows])[keep]
    return vectors[keep], np.searchsorted(np.unique(labels), labels)


def flip(y: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    chosen = rng.choice(len(y), size=round(FLIP_SHARE * len(y)), replace=False)
    noisy[chosen] = (y[chosen] + rng.integers(1, n_classes, size=len(chosen))) % n_classes
    return noisy


def scores(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    hits = int((flagged & truth).sum())
    precision = hits / max(1, int(flagged.sum()))
    recall = hits / max(1, int(truth.sum()))
    return precision, recall, 2 * precision * recall / max(1e-12, precision + recall)


def frontier(blended: np.ndarray, y: np.ndarray, truth: np.ndarray, recall: float) -> np.ndarray:
    """The shortest prefix of rows by self-confidence that reaches ``recall``: best precision there."""
    order = np.argsort(blended[np.arange(len(y)), y], kind="stable")
    hits = np.cumsum(truth[order])
    count = int(np.searchsorted(hits, recall * truth.sum() - 1e-9)) + 1
    flagged = np.zeros(len(y), dtype=bool)
    flagged[order[:count]] = True
    return flagged


def methods(x: np.ndarray, y: np.ndarray, n_classes: int, graph, truth: np.ndarray) -> dict[str, np.ndarray]:
    from cleanlab.filter import find_label_issues

    from dataaudit.features.confident_learning import (
        confident_label_issues,
        knn_probabilities,
        out_of_fold_probabilities,
    )

    ridge = out_of_fold_probabilities(x, y, n_classes, folds=5, seed=0)
    votes = knn_probabilities(graph, np.arange(len(y)), y, n_classes)
    blended = 0.5 * ridge + 0.5 * votes
    today = confident_label_issues(y, blended).flagged
    return {
        "today": today,
        "cleanlab find_label_issues": find_label_issues(y, blended),
        "cleanlab filter_by=both": find_label_issues(y, blended, filter_by="both"),
        "frontier @ today's recall": frontier(blended, y, truth, scores(today, truth)[1]),
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    from dataaudit.neighbors import build_knn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    records = []
    for name in args.datasets.split(","):
        loaded = load(name)
        if loaded is None:
            print(f"skipped {name}: file not available")
            continue
        x, y = loaded
        n_classes = int(y.max()) + 1
        graph = build_knn(x, k=30, seed=0)
        results: dict[str, list[tuple[float, float, float]]] = {}
        started = time.perf_counter()
        for seed in [int(s) for s in args.seeds.split(",")]:
            noisy = flip(y, n_classes, seed)
            for method, flagged in methods(x, noisy, n_classes, graph, noisy != y).items():
                results.setdefault(method, []).append(scores(flagged, noisy != y))
        seconds = time.perf_counter() - started
        for method, values in results.items():
            precision, recall, f1 = np.mean(values, axis=0)
            records.append([name, f"{len(y):,}", n_classes, method, f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}"])
        print(f"{name}: {seconds:.0f}s", file=sys.stderr)
    print(f"Label flips at {FLIP_SHARE:.0%} (training split), mean over seeds {args.seeds}")
    print(table(["dataset", "rows", "classes", "method", "precision", "recall", "F1"], records))


if __name__ == "__main__":
    main()
