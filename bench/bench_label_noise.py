"""Label noise found by the audit alone: planted 5% flips on TREC fine, Banking77 and CLINC150.

    python -m bench.bench_label_noise [--seeds 0,1,2] [--datasets trec_fine,banking77,clinc150] [--levers]
                                      [--rows 2000]

5% of the training rows get a random other label (seeded). Each method sees the same MiniLM
vectors (cached, see bench_coverage_banking.cached_vectors) and the same kNN graph (k = 30, the
audit's default) and flags rows; precision, recall and F1 against the planted flips, mean over
seeds:

- ``audit``: the conflict check's confident learning as it runs in an audit — out-of-fold
  probabilities of the label model chosen on the dataset by the log-loss of its (noisy) given
  labels (:mod:`dataaudit.features.label_models`; the choice is printed), and
  :func:`confident_label_issues` with the per-class thresholds floored at ``MIN_CLASS_THRESHOLD``;
- ``audit, blend (before the choice)``: the same with the ridge-softmax blended 50/50 with kNN
  label votes, the model every dataset got before;
- ``audit, no floor``: the same with plain confident-learning thresholds (the code before the
  floor);
- ``cleanlab``: cleanlab's ``find_label_issues`` (default filter) and with ``filter_by="both"``,
  on the same blended out-of-fold probabilities;
- ``frontier @ audit's recall``: the best precision *any* cut of the audit's ranking (lowest
  self-confidence first) reaches at the audit's recall — what a better count of errors could
  gain without better probabilities.

``--levers`` prints instead one row per lever tried on top of the audit (issue 22): threshold
floors and caps, the kNN weight of the blend (fixed, or chosen by log loss), a softmax
temperature on the blend chosen by log loss, ridge strength, sharper kNN votes, ranking by margin
or by class-normalised self-confidence, a second pass refitted without the first pass's flags. Only the floor was kept: it is the one lever that gains precision on TREC fine without
costing Banking77 or CLINC150 anything. ``--rows N`` audits a random N-row subset of each
training split per seed instead: few rows per class, where the floor matters most.

Skips datasets whose file is absent from ../shared/realdata (``DATAAUDIT_REALDATA`` overrides).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

from bench._common import REALDATA, read_jsonl
from bench.bench_coverage_banking import table  # the benches' one plain-text table

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: name -> (file, label field, rows kept: training split, in-scope)
DATASETS = {
    "trec_fine": ("trec_qc.jsonl", "label_fine"),
    "banking77": ("banking77.jsonl", "intent"),
    "clinc150": ("clinc150_oos.jsonl", "intent"),
}
FLIP_SHARE = 0.05


def load_labelled(name: str) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """Training-split texts, their MiniLM vectors (cached) and label names (in-scope rows only)."""
    from bench.bench_coverage_banking import cached_vectors

    file, field = DATASETS[name]
    path = REALDATA / file
    if not path.exists():
        return None
    rows = read_jsonl(path)
    vectors = cached_vectors(path, [row["text"] for row in rows])
    keep = np.array([row["split"] == "train" and row[field] != "oos" for row in rows])
    texts = [row["text"] for row, kept in zip(rows, keep) if kept]
    return texts, vectors[keep], np.array([row[field] for row in rows])[keep]


def load(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The vectors and integer class codes of :func:`load_labelled`."""
    loaded = load_labelled(name)
    if loaded is None:
        return None
    _, vectors, labels = loaded
    return vectors, np.searchsorted(np.unique(labels), labels)


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


def require_cleanlab() -> None:
    """The comparison needs cleanlab (bench-only): say so before minutes of work, not after."""
    import importlib.util

    if importlib.util.find_spec("cleanlab") is None:
        raise SystemExit("this bench compares with cleanlab, which is not installed: pip install cleanlab")


def methods(x: np.ndarray, y: np.ndarray, n_classes: int, graph, truth: np.ndarray, *,
            with_cleanlab: bool = True) -> dict[str, np.ndarray]:
    from dataaudit.features.confident_learning import (
        MIN_CLASS_THRESHOLD,
        confident_label_issues,
        knn_probabilities,
        out_of_fold_probabilities,
    )
    from dataaudit.features.label_models import label_model_probabilities

    ridge = out_of_fold_probabilities(x, y, n_classes, folds=5, seed=0)
    votes = knn_probabilities(graph, np.arange(len(y)), y, n_classes)
    blended = 0.5 * ridge + 0.5 * votes
    audit = confident_label_issues(y, blended, min_threshold=MIN_CLASS_THRESHOLD).flagged
    choice = label_model_probabilities(x, y, n_classes, graph, np.arange(len(y)), folds=5, seed=0)
    print(f"  chosen label model: {choice.summary()['label_model']} — {choice.summary()['label_model_reason']}; "
          f"all: {choice.summary()['label_model_log_loss']}", file=sys.stderr, flush=True)
    return {
        "audit": confident_label_issues(y, choice.probabilities, min_threshold=MIN_CLASS_THRESHOLD).flagged,
        "audit, blend (before the choice)": audit,
        "audit, no floor": confident_label_issues(y, blended).flagged,
        **(cleanlab_methods(y, blended) if with_cleanlab else {}),
        "frontier @ audit's recall": frontier(blended, y, truth, scores(audit, truth)[1]),
    }


def cleanlab_methods(y: np.ndarray, blended: np.ndarray) -> dict[str, np.ndarray]:
    from cleanlab.filter import find_label_issues

    return {"cleanlab find_label_issues": find_label_issues(y, blended),
            "cleanlab filter_by=both": find_label_issues(y, blended, filter_by="both")}


def levers(x: np.ndarray, y: np.ndarray, n_classes: int, graph, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Each lever tried for issue 22, flagged as the audit would with that one change."""
    from types import SimpleNamespace

    from dataaudit.features.confident_learning import (
        MIN_CLASS_THRESHOLD,
        _ridge_softmax,
        confident_label_issues,
        knn_probabilities,
        out_of_fold_probabilities,
        stratified_folds,
    )

    rows = np.arange(len(y))
    ridge = out_of_fold_probabilities(x, y, n_classes, folds=5, seed=0)
    votes = knn_probabilities(graph, rows, y, n_classes)
    blended = 0.5 * ridge + 0.5 * votes

    def audit(probabilities: np.ndarray, floor: float = MIN_CLASS_THRESHOLD) -> np.ndarray:
        return confident_label_issues(y, probabilities, min_threshold=floor).flagged

    def by_key(key: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """The audit's count and condition, rows ranked by ``key`` instead of self-confidence."""
        issues = confident_label_issues(y, probabilities, min_threshold=MIN_CLASS_THRESHOLD)
        flagged = np.zeros(len(y), dtype=bool)
        flagged[np.argsort(key, kind="stable")[:issues.estimated]] = True
        return flagged & (probabilities[rows, issues.predicted] > probabilities[rows, y])

    sharp = SimpleNamespace(indices=graph.indices, similarities=np.exp((graph.similarities.astype(np.float64) - 1) / 0.1))
    own = blended[rows, y]
    others = blended.copy()
    others[rows, y] = -1.0
    class_mean = np.bincount(y, weights=own, minlength=n_classes) / np.maximum(np.bincount(y, minlength=n_classes), 1)
    # Second pass: every row scored by models that never saw the first pass's flagged rows.
    kept = ~audit(blended)
    fold_of = stratified_folds(y, folds=5, seed=0)
    refit_ridge = np.empty_like(blended)
    for fold in range(5):
        test = fold_of == fold
        refit_ridge[test] = _ridge_softmax(x, np.flatnonzero(~test & kept), y[~test & kept], np.flatnonzero(test),
                                           n_classes, 1.0)
    neighbour_labels = np.where(kept, y, -1)[np.clip(graph.indices, 0, None)]
    valid = (graph.indices >= 0) & (neighbour_labels >= 0)
    refit_votes = np.zeros_like(blended)
    owner = np.broadcast_to(rows[:, None], graph.indices.shape)
    np.add.at(refit_votes, (owner[valid], neighbour_labels[valid]),
              np.clip(graph.similarities, 0, None)[valid].astype(np.float64))
    refit_votes = (refit_votes + 1.0 / n_classes) / (refit_votes.sum(axis=1, keepdims=True) + 1.0)
    weights = np.linspace(0.0, 1.0, 11)
    weight = weights[np.argmin([_log_loss((1 - w) * ridge + w * votes, y) for w in weights])]
    powers = np.geomspace(0.5, 4.0, 13)
    power = powers[np.argmin([_log_loss(_sharpen(blended, t), y) for t in powers])]
    return {
        "no floor (before)": audit(blended, 0.0),
        f"floor {MIN_CLASS_THRESHOLD} (kept)": audit(blended),
        "floor 0.4": audit(blended, 0.4),
        "floor 0.5": audit(blended, 0.5),
        f"floor {MIN_CLASS_THRESHOLD} + cap 0.7": _capped(y, blended, MIN_CLASS_THRESHOLD, 0.7),
        "kNN weight 0.3": audit(0.7 * ridge + 0.3 * votes),
        "kNN weight 0.7": audit(0.3 * ridge + 0.7 * votes),
        "kNN weight by log loss": audit((1 - weight) * ridge + weight * votes),
        "blend temperature by log loss": audit(_sharpen(blended, power)),
        "ridge alpha 10": audit(0.5 * out_of_fold_probabilities(x, y, n_classes, folds=5, seed=0, alpha=10.0)
                                + 0.5 * votes),
        "kNN votes exp(sim/0.1)": audit(0.5 * ridge + 0.5 * knn_probabilities(sharp, rows, y, n_classes)),
        "rank by margin": by_key(own - others.max(axis=1), blended),
        "rank by self-conf / class mean": by_key(own / np.maximum(class_mean[y], 1e-12), blended),
        "second pass without flags": audit(0.5 * refit_ridge + 0.5 * refit_votes),
    }


def _log_loss(probabilities: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(probabilities[np.arange(len(y)), y] + 1e-12).mean())


def _sharpen(probabilities: np.ndarray, power: float) -> np.ndarray:
    sharpened = np.exp(power * np.log(probabilities + 1e-12))
    return sharpened / sharpened.sum(axis=1, keepdims=True)


def _capped(y: np.ndarray, probabilities: np.ndarray, floor: float, cap: float) -> np.ndarray:
    """Confident learning with the per-class thresholds clipped into [floor, cap]."""
    from dataaudit.features.confident_learning import confident_label_issues

    n, k = probabilities.shape
    own = probabilities[np.arange(n), y]
    means = np.bincount(y, weights=own, minlength=k) / np.maximum(np.bincount(y, minlength=k), 1)
    thresholds = np.clip(means, floor, cap)
    above = probabilities >= thresholds[None, :] - 1e-12
    confident = np.where(above, probabilities, -1.0).argmax(axis=1)
    estimated = int((above.any(axis=1) & (confident != y)).sum())
    issues = confident_label_issues(y, probabilities)
    flagged = np.zeros(n, dtype=bool)
    flagged[np.argsort(own, kind="stable")[:estimated]] = True
    return flagged & (probabilities[np.arange(n), issues.predicted] > own)


def main() -> None:
    from dataaudit.neighbors import build_knn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--levers", action="store_true", help="one row per lever tried (issue 22)")
    parser.add_argument("--rows", type=int, help="a random subset of the training split per seed (small sets)")
    parser.add_argument("--no-cleanlab", action="store_true", help="leave out the cleanlab rows (not installed)")
    args = parser.parse_args()
    if not args.no_cleanlab:
        require_cleanlab()
    run = levers if args.levers else functools.partial(methods, with_cleanlab=not args.no_cleanlab)
    records = []
    for name in args.datasets.split(","):
        loaded = load(name)
        if loaded is None:
            print(f"skipped {name}: file not available")
            continue
        all_x, all_y = loaded
        results: dict[str, list[tuple[float, float, float]]] = {}
        started = time.perf_counter()
        graph = None if args.rows else build_knn(all_x, k=30, seed=0)
        for seed in [int(s) for s in args.seeds.split(",")]:
            x, y = all_x, all_y
            if args.rows:  # every class of the subset renumbered; the graph is the subset's own
                subset = np.random.default_rng(seed).choice(len(all_y), min(args.rows, len(all_y)), replace=False)
                x, y = all_x[subset], np.unique(all_y[subset], return_inverse=True)[1]
                graph = build_knn(x, k=30, seed=0)
            n_classes = int(y.max()) + 1
            noisy = flip(y, n_classes, seed)
            for method, flagged in run(x, noisy, n_classes, graph, noisy != y).items():
                results.setdefault(method, []).append(scores(flagged, noisy != y))
        seconds = time.perf_counter() - started
        for method, values in results.items():
            precision, recall, f1 = np.mean(values, axis=0)
            records.append([name, f"{len(y):,}", n_classes, method, f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}"])
        print(f"{name}: {seconds:.0f}s", file=sys.stderr)
    print(f"Label flips at {FLIP_SHARE:.0%} (training split), mean over seeds {args.seeds}")
    print(table(["dataset", "rows", "classes", "lever" if args.levers else "method", "precision", "recall", "F1"],
                records))


if __name__ == "__main__":
    main()
