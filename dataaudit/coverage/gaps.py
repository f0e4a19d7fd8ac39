"""Group uncovered production texts into topics, so a gap reads as "collect data about X".

Uncovered rows are few and scattered, so the full UMAP + HDBSCAN pipeline (built for whole
datasets) is the wrong tool: UMAP is unstable on a few hundred points. HDBSCAN runs directly
on the unit embeddings instead (Euclidean distance there is monotone in cosine similarity),
with ``min_samples=1`` so small, tight topics survive. Topics are the leaves of HDBSCAN's
cluster tree: among scattered rows in 384 dimensions its default selection (excess of mass)
keeps one big blob, so on Banking77's test split against its own training split a "topic" of
150 unrelated prompts (6% of them one intent) asked the user to collect 244 examples "like
these". A missing topic that leaves split is joined again by merging (below). Which rows grow
the gaps (below) is still decided by the default selection's clusters, read off the same tree:
rows it calls noise are outliers even among the uncovered and seed nothing.

HDBSCAN never returns its whole input as one cluster, so when every uncovered row belongs to a
single topic it finds nothing. In that case the rows are clustered again among a sample of
training rows: against that background a lone uncovered topic stands out, and clusters made
mostly of training rows are dropped.

Then one rule — *closer to the uncovered topic than to anything training has* — tidies up:

- **growth.** A topic seldom falls entirely below the per-row threshold: the rows of a missing
  topic that happen to lie near some related training topic pass it one by one. A production
  row is a gap too (``near_gap_``) when it is more similar to a clustered uncovered row than to
  any training row, and joins a topic when that holds for one of the topic's rows.
- **merging.** HDBSCAN splits a missing topic into its sub-themes (a missing "translation"
  family into one cluster per language pair). Two gap clusters merge when most rows of the
  smaller are more similar to some row of the other than to any training row.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dataaudit.errors import UsageError
from dataaudit.progress import NULL_PROGRESS, Progress

#: Above this many uncovered rows, a seeded sample is clustered and the rest join by growth.
MAX_CLUSTERED_ROWS = 5_000
#: How the topics are read off HDBSCAN's tree (``GapClusterer(cluster_selection=...)``).
CLUSTER_SELECTIONS = ("leaf", "eom")


def default_min_cluster_size(gap_rows: int) -> int:
    """3 for small gap sets, growing like sqrt(n)/8 so large ones don't shatter into crumbs."""
    return max(3, round(math.sqrt(gap_rows) / 8))


class GapClusterer:
    """Cluster uncovered production rows, then grow the clusters to their whole topic.

    ``min_cluster_size``: fewest rows that make a gap topic (None: :func:`default_min_cluster_size`).
    ``cluster_selection``: the topics, ``"leaf"`` (the tree's leaves: tight topics) or ``"eom"``
    (HDBSCAN's default; lumps scattered rows together, see the module docstring). Either way the
    same rows are gaps.
    """

    def __init__(self, *, min_cluster_size: int | None = None, cluster_selection: str = "leaf", seed: int = 0):
        self.min_cluster_size = min_cluster_size
        self.cluster_selection = cluster_selection
        self.seed = seed

    def fit_predict(
        self,
        embeddings: np.ndarray,
        is_gap: np.ndarray,
        training_similarity: np.ndarray,
        *,
        reference: np.ndarray,
        progress: Progress = NULL_PROGRESS,
        joinable: np.ndarray | None = None,
    ) -> np.ndarray:
        """Gap cluster per production row (-1 = none), numbered by decreasing size.

        ``training_similarity`` is each row's similarity to its nearest training row (NaN when
        there is no training data: then every row may join a cluster); ``reference`` holds the
        training embeddings (the background for a lone topic; may have no rows). ``joinable``: the
        rows growth may add (default: every row); the uncovered rows themselves always count.
        """
        if self.cluster_selection not in CLUSTER_SELECTIONS:
            raise UsageError(f"cluster_selection must be one of {', '.join(CLUSTER_SELECTIONS)}, "
                             f"not {self.cluster_selection!r}")
        embeddings = np.asarray(embeddings, dtype=np.float32)
        is_gap = np.asarray(is_gap, dtype=bool)
        labels = np.full(len(embeddings), -1, dtype=np.int64)
        self.near_gap_ = np.zeros(len(embeddings), dtype=bool)
        candidates = np.flatnonzero(is_gap)
        self.min_cluster_size_ = (
            self.min_cluster_size if self.min_cluster_size is not None else default_min_cluster_size(len(candidates))
        )
        size = max(2, self.min_cluster_size_)
        if len(candidates) > MAX_CLUSTERED_ROWS:
            rng = np.random.default_rng(self.seed)
            candidates = np.sort(rng.choice(candidates, size=MAX_CLUSTERED_ROWS, replace=False))
        if len(candidates) < size:
            return labels
        with progress.task("Clustering coverage gaps", total=len(candidates)) as task:
            found, leaves = _hdbscan(embeddings[candidates], min_cluster_size=size)
            if (found < 0).all():  # a lone topic: the background's clusters are the topic
                found = leaves = self._against_background(embeddings[candidates], np.asarray(reference, dtype=np.float32), size)
            labels[candidates] = {"leaf": leaves, "eom": found}[self.cluster_selection]
            task.advance(len(candidates))
        training_similarity = np.nan_to_num(np.asarray(training_similarity, dtype=np.float64), nan=-np.inf)
        may_join = is_gap | (True if joinable is None else np.asarray(joinable, dtype=bool))
        labels, self.near_gap_ = _grow(embeddings, candidates[found >= 0], labels, training_similarity, may_join)
        labels = _merge(embeddings, labels, training_similarity)
        return _renumber_by_size(labels)


    def _against_background(self, vectors: np.ndarray, reference: np.ndarray, size: int) -> np.ndarray:
        """Cluster ``vectors`` among as many training rows; keep clusters that are mostly ``vectors``."""
        if reference.ndim != 2 or len(reference) == 0 or reference.shape[1] != vectors.shape[1]:
            return np.full(len(vectors), -1, dtype=np.int64)
        rng = np.random.default_rng(self.seed)
        background = reference[np.sort(rng.choice(len(reference), size=min(len(reference), len(vectors)), replace=False))]
        joint, _ = _hdbscan(np.vstack([vectors, background]), min_cluster_size=size)
        own = joint[: len(vectors)]
        for cluster in np.unique(own[own >= 0]):
            if (own == cluster).sum() * 2 <= (joint == cluster).sum():
                own[own == cluster] = -1
        return own


def _hdbscan(vectors: np.ndarray, *, min_cluster_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(excess-of-mass clusters, leaf clusters) from one fit: the selection only reads the tree."""
    import hdbscan

    if len(np.unique(vectors, axis=0)) < 2:  # all identical: one topic, HDBSCAN cannot split zero distances
        same = np.zeros(len(vectors), dtype=np.int64)
        return same, same
    model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1, metric="euclidean")
    found = np.asarray(model.fit_predict(vectors.astype(np.float64)), dtype=np.int64)
    return found, _leaves(model.condensed_tree_.to_numpy(), len(vectors))


def _leaves(tree: np.ndarray, n: int) -> np.ndarray:
    """Leaf-selection labels from a condensed tree (rows: parent, child, lambda_val, child_size):
    a point belongs to the leaf cluster it fell out of, and is noise when it fell out of a cluster
    that splits further. The same labels as ``cluster_selection_method="leaf"`` without a refit."""
    parent, child, size = tree["parent"], tree["child"], tree["child_size"]
    clusters = child[size > 1]  # every cluster but the root, which is never selected
    leaves = np.sort(clusters[~np.isin(clusters, parent[size > 1])])
    labels = np.full(n, -1, dtype=np.int64)
    members = (size == 1) & np.isin(parent, leaves)
    labels[child[members]] = np.searchsorted(leaves, parent[members])
    return labels


def _grow(embeddings: np.ndarray, seeds: np.ndarray, labels: np.ndarray,
          training_similarity: np.ndarray, joinable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, near): ``near`` marks the ``seeds`` and the ``joinable`` rows more similar to one
    of them than to any training row; such rows outside a topic join the topic of their most
    similar seed that has one, if it is closer than training."""
    near = np.zeros(len(embeddings), dtype=bool)
    near[seeds] = True
    outside = np.flatnonzero((labels < 0) & joinable)
    if len(seeds) == 0 or len(outside) == 0:
        return labels, near
    clustered = labels[seeds] >= 0
    members = seeds[clustered]
    grown = labels.copy()
    block = max(1, (64 << 20) // (4 * len(seeds)))
    for start in range(0, len(outside), block):
        rows = outside[start : start + block]
        similarity = embeddings[rows] @ embeddings[seeds].T
        near[rows] |= similarity.max(axis=1) > training_similarity[rows]
        if len(members):
            to_members = similarity[:, clustered]
            best = to_members.argmax(axis=1)
            joins = to_members[np.arange(len(rows)), best] > training_similarity[rows]
            grown[rows[joins]] = labels[members[best[joins]]]
    return grown, near


def _merge(embeddings: np.ndarray, labels: np.ndarray, training_similarity: np.ndarray) -> np.ndarray:
    """Merge the pair of clusters that most clearly forms one topic, until no pair does.

    ``closest[i, c]``: row ``i``'s highest similarity to a row of cluster ``c``. The smaller
    cluster A merges into B when more than half of A's rows have ``closest[i, B]`` above their
    similarity to training; among such pairs the one with the largest share goes first.
    """
    ids = [int(c) for c in np.unique(labels) if c >= 0]
    if len(ids) < 2:
        return labels
    labels = labels.copy()
    rows = np.flatnonzero(labels >= 0)
    vectors, own = embeddings[rows], labels[rows]
    closest = np.column_stack([(vectors @ vectors[own == c].T).max(axis=1) for c in ids])
    beats_training = closest > training_similarity[rows, None]
    alive = list(range(len(ids)))
    while len(alive) > 1:
        sizes = {j: int((own == ids[j]).sum()) for j in alive}
        best = None
        for a in alive:
            shares = beats_training[own == ids[a]][:, alive].mean(axis=0)
            for b, share in zip(alive, shares):
                if a == b or (sizes[a], a) > (sizes[b], b):  # look from the smaller cluster
                    continue
                if share > 0.5 and (best is None or share > best[0]):
                    best = (float(share), a, b)
        if best is None:
            break
        _, a, b = best
        own[own == ids[a]] = ids[b]
        closest[:, b] = np.maximum(closest[:, a], closest[:, b])
        beats_training[:, b] |= beats_training[:, a]
        alive.remove(a)
    labels[rows] = own
    return labels


def _renumber_by_size(labels: np.ndarray) -> np.ndarray:
    """0 = largest cluster; ties broken by the first row, so numbering is reproducible."""
    ids = [int(c) for c in np.unique(labels) if c >= 0]
    order = sorted(ids, key=lambda c: (-int((labels == c).sum()), int(np.flatnonzero(labels == c)[0])))
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping.get(int(c), -1) for c in labels], dtype=np.int64)


def representatives(embeddings: np.ndarray, texts: Sequence[str], *, limit: int = 5) -> list[str]:
    """Up to ``limit`` distinct texts, most central (closest to the normalised mean) first."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    centre = embeddings.mean(axis=0)
    centre /= max(np.linalg.norm(centre), 1e-12)
    order = np.argsort(-(embeddings @ centre), kind="stable")
    chosen: list[str] = []
    for position in order:
        text = texts[position]
        if text not in chosen:
            chosen.append(text)
        if len(chosen) == limit:
            break
    return chosen


def majority(values: Sequence[int]) -> int | None:
    """Most common non-negative value (smallest on ties), None when there is none."""
    counts = Counter(int(v) for v in values if v >= 0)
    if not counts:
        return None
    return min(counts, key=lambda value: (-counts[value], value))


#: Why a gap's collection count is what it is (``gaps.parquet`` column ``collect_basis``).
COLLECT_BASES = ("proportional", "floor", "ceiling")


@dataclass(frozen=True)
class Collection:
    """How many examples to collect, and which rule set the number (one of :data:`COLLECT_BASES`)."""

    count: int
    basis: str


def recommended_collection(size: int, *, production_rows: int, training_rows: int, min_collect: int,
                           max_collect: int) -> Collection:
    """How many examples to collect for a gap of ``size`` production rows.

    Proportional allocation: after collecting, the topic should take the same share of
    training as it takes of production traffic, i.e. ``size / production_rows * training_rows``
    — the density training already gives an average production row. At least ``min_collect``
    (``"floor"``: a handful of examples teaches a fine-tune nothing), at most ``max_collect``
    (``"ceiling"``: the largest existing training cluster; no single topic needs more than the
    best-covered one has). The basis is kept so a report can say a count was capped.
    """
    proportional = math.ceil(size / max(production_rows, 1) * training_rows)
    ceiling = max(max_collect, min_collect)
    if proportional > ceiling:
        return Collection(count=int(ceiling), basis="ceiling")
    if proportional < min_collect:
        return Collection(count=int(min_collect), basis="floor")
    return Collection(count=int(proportional), basis="proportional")
