"""How reproducible each cluster is: bootstrap re-clustering with best-match Jaccard.

Stability of cluster C = the mean, over ``resamples`` random subsamples (``fraction``
of the rows, drawn without replacement), of

    max over clusters D of the subsample's re-clustering  |C_s ∩ D| / |C_s ∪ D|

where C_s is C restricted to the subsampled rows (Hennig's clusterwise stability, as in
``fpc::clusterboot``). 1 means the cluster comes back intact every time; below about
0.5 it is not reproducible. Re-clustering runs on the *reduced* points with the same
clusterer (the expensive reduction is not repeated) and a minimum cluster size scaled
by ``fraction``, so that a cluster is not lost merely because it was subsampled.
A resample that drew no member of C says nothing about it and is skipped; a cluster
that no resample drew gets 0.
"""

from __future__ import annotations

import numpy as np

from dataaudit.cluster.clusterers import Clusterer
from dataaudit.progress import NULL_PROGRESS, Progress


def bootstrap_stability(
    points: np.ndarray,
    labels: np.ndarray,
    clusterer: Clusterer,
    *,
    min_cluster_size: int,
    resamples: int = 10,
    fraction: float = 0.8,
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> dict[int, float]:
    """Stability in [0, 1] for every cluster id in ``labels`` (noise excluded)."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    clusters = np.unique(labels[labels >= 0])
    if clusters.size == 0:
        return {}
    n_rows = len(labels)
    sample_size = max(1, round(fraction * n_rows))
    sample_min_size = max(2, round(min_cluster_size * fraction))
    rng = np.random.default_rng(seed)
    totals = np.zeros(clusters.size)
    counted = np.zeros(clusters.size)
    with progress.task("Cluster stability", total=resamples) as task:
        for _ in range(resamples):
            sample = np.sort(rng.choice(n_rows, size=sample_size, replace=False))
            relabelled = clusterer.fit_predict(points[sample], min_cluster_size=sample_min_size)
            best, present = best_match_jaccard(labels[sample], relabelled, clusters)
            totals += best
            counted += present
            task.advance(1)
    stability = np.divide(totals, counted, out=np.zeros_like(totals), where=counted > 0)
    return {int(c): float(np.clip(s, 0.0, 1.0)) for c, s in zip(clusters, stability)}


def best_match_jaccard(original: np.ndarray, relabelled: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster id in ``clusters``: its best Jaccard with a cluster of ``relabelled``
    (both labelings of the same rows, -1 = noise), and whether it has rows here at all."""
    in_original = np.searchsorted(clusters, original)
    known = (original >= 0) & (in_original < clusters.size)
    known[known] &= clusters[in_original[known]] == original[known]
    original_sizes = np.bincount(in_original[known], minlength=clusters.size).astype(np.float64)
    present = original_sizes > 0
    new_ids = relabelled[relabelled >= 0]
    if new_ids.size == 0:
        return np.zeros(clusters.size), present
    n_new = int(new_ids.max()) + 1
    new_sizes = np.bincount(new_ids, minlength=n_new).astype(np.float64)
    both = known & (relabelled >= 0)
    overlap = np.zeros((clusters.size, n_new))
    np.add.at(overlap, (in_original[both], relabelled[both]), 1.0)
    union = original_sizes[:, None] + new_sizes[None, :] - overlap
    jaccard = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    return jaccard.max(axis=1), present
