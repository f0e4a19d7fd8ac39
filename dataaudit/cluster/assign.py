"""Carrying a clustering fitted on a sample over to every row, through the kNN graph.

UMAP and HDBSCAN are superlinear in time and memory; past a few tens of thousands of rows the
pipeline fits them on a uniform sample and places every other row from its nearest neighbours,
which the audit has already computed for all rows. A row takes the similarity-weighted vote of
its placed neighbours' labels and the weighted mean of their coordinates; rows whose neighbours
are all unplaced wait for the next round (so the sample spreads outward along the graph, like
label propagation). The few rows never reached (components of the graph without a sampled row)
take the cluster with the most similar centroid in embedding space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataaudit.progress import NULL_PROGRESS, Progress

#: Rounds of spreading; each reaches one more hop from the sample.
MAX_ROUNDS = 20
#: Rows placed in one block (bounds the (rows, k, d) gathers).
_PLACE_BLOCK_ROWS = 65_536
#: Rows voted in one block: the vote matrix is rows × (clusters + 1) float32.
_VOTE_BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class Placement:
    """Labels and coordinates for every row; ``rounds[i]`` is the hop at which row ``i`` was placed
    (0 = in the fitted sample, -1 = reached by nearest centroid, not by the graph)."""

    labels: np.ndarray  # (n,) int64, -1 = noise
    points: np.ndarray  # (n, d) float32: the reduced layout
    xy: np.ndarray  # (n, 2) float32: the map
    rounds: np.ndarray  # (n,) int64


def sample_rows(n_rows: int, size: int, seed: int) -> np.ndarray:
    """A uniform sample of ``size`` row positions, sorted (so fitting sees rows in file order)."""
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=min(size, n_rows), replace=False))


def spread_from_sample(
    sample: np.ndarray,
    labels: np.ndarray,
    points: np.ndarray,
    xy: np.ndarray,
    *,
    neighbours: np.ndarray,
    similarities: np.ndarray,
    embeddings: np.ndarray,
    progress: Progress = NULL_PROGRESS,
) -> Placement:
    """Place all ``len(neighbours)`` rows given the fitted ``labels``/``points``/``xy`` of the
    ``sample`` rows (aligned with ``sample``) and the kNN graph over all rows."""
    n_rows = len(neighbours)
    n_clusters = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    all_labels = np.full(n_rows, -1, dtype=np.int64)
    all_points = np.zeros((n_rows, points.shape[1]), dtype=np.float32)
    all_xy = np.zeros((n_rows, 2), dtype=np.float32)
    rounds = np.full(n_rows, -1, dtype=np.int64)
    all_labels[sample], all_points[sample], all_xy[sample], rounds[sample] = labels, points, xy, 0
    placed = np.zeros(n_rows, dtype=bool)
    placed[sample] = True
    weights = np.maximum(np.asarray(similarities, dtype=np.float32), 1e-6)
    with progress.task("Placing rows outside the fitted sample", total=n_rows - len(sample)) as task:
        for hop in range(1, MAX_ROUNDS + 1):
            waiting = np.flatnonzero(~placed)
            if waiting.size == 0:
                break
            known = placed[neighbours[waiting]]
            reachable = known.any(axis=1)
            if not reachable.any():
                break
            rows, known = waiting[reachable], known[reachable]
            for start in range(0, rows.size, _PLACE_BLOCK_ROWS):
                block = rows[start:start + _PLACE_BLOCK_ROWS]
                # Unplaced neighbours weigh 0, so rows placed earlier in this round change nothing.
                near = neighbours[block]
                weight = np.where(known[start:start + _PLACE_BLOCK_ROWS], weights[block], 0.0)
                all_labels[block] = _weighted_vote(all_labels[near], weight, n_clusters)
                total = weight.sum(axis=1, keepdims=True)
                all_points[block] = np.einsum("rk,rkd->rd", weight, all_points[near]) / total
                all_xy[block] = np.einsum("rk,rkd->rd", weight, all_xy[near]) / total
            rounds[rows] = hop
            placed[rows] = True
            task.advance(rows.size)
        stranded = np.flatnonzero(~placed)
        if stranded.size:
            _place_by_centroid(stranded, sample[labels >= 0], embeddings, all_labels, all_points, all_xy)
            task.advance(stranded.size)
    return Placement(labels=all_labels, points=all_points, xy=all_xy, rounds=rounds)


def _weighted_vote(neighbour_labels: np.ndarray, weight: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per row, the label (noise included) with the largest summed weight; ties to the lowest id."""
    n_rows, k = neighbour_labels.shape
    width = n_clusters + 1  # noise (-1) is column 0
    chosen = np.empty(n_rows, dtype=np.int64)
    block = max(1, _VOTE_BLOCK_BYTES // (8 * width))
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        cells = np.arange(stop - start)[:, None] * width + neighbour_labels[start:stop] + 1
        votes = np.bincount(cells.ravel(), weights=weight[start:stop].ravel(), minlength=(stop - start) * width)
        chosen[start:stop] = votes.reshape(stop - start, width).argmax(axis=1) - 1
    return chosen


def _place_by_centroid(rows: np.ndarray, clustered: np.ndarray, embeddings: np.ndarray, labels: np.ndarray,
                       points: np.ndarray, xy: np.ndarray) -> None:
    """Rows the graph never reached: the cluster whose centroid (over the clustered sample rows)
    is most cosine-similar, placed at that cluster's mean coordinates. Without clusters they stay
    noise at the origin."""
    if clustered.size == 0:
        return
    ids, index = np.unique(labels[clustered], return_inverse=True)
    centroids = np.zeros((ids.size, embeddings.shape[1]), dtype=np.float64)
    np.add.at(centroids, index, embeddings[clustered])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    best = np.argmax(np.asarray(embeddings[rows], dtype=np.float64) @ centroids.T, axis=1)
    labels[rows] = ids[best]
    for position in range(len(ids)):
        members = clustered[index == position]
        chosen = rows[best == position]
        if chosen.size:
            points[chosen] = points[members].mean(axis=0)
            xy[chosen] = xy[members].mean(axis=0)
