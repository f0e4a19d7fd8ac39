"""The clustering stage: reduce → cluster → map → label → stability, in BERTopic's spirit.

Each stage is a swappable component; the defaults were chosen on CLINC150 and Banking77
with MiniLM embeddings (see ``bench/bench_cluster_clinc.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import polars as pl

from dataaudit.cluster.assign import sample_rows, spread_from_sample
from dataaudit.cluster.clusterers import Clusterer, HDBSCANClusterer, derive_min_cluster_size
from dataaudit.cluster.labels import class_tfidf_keywords, keyword_label
from dataaudit.cluster.mappers import Mapper, UMAPMapper, pca_2d
from dataaudit.cluster.nearest import nearest_clusters
from dataaudit.cluster.reducers import Reducer, UMAPReducer
from dataaudit.cluster.representatives import central_members
from dataaudit.cluster.stability import bootstrap_stability
from dataaudit.params import OPTIONAL_SEED, Component, Interval, Satisfies
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.runtime import in_background, in_place

if TYPE_CHECKING:
    from dataaudit.neighbors import KnnGraph

logger = logging.getLogger(__name__)

#: Columns of :attr:`Clustering.clusters`.
CLUSTERS_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.Int64,
    "size": pl.Int64,
    "label": pl.String,
    "keywords": pl.List(pl.String),
    "representatives": pl.List(pl.Int64),
    "stability": pl.Float64,
}
#: Share of rows drawn in each stability resample.
STABILITY_FRACTION = 0.8
#: Fitted rows from which the clustering runs in a worker process beside the map: below it the
#: two take a few seconds together, less than starting a worker.
BACKGROUND_MIN_ROWS = 20_000
#: Keywords kept per cluster (the label uses the first three).
KEYWORDS_PER_CLUSTER = 10
#: Neighbours per row of the sample's own kNN graph when no full graph sets the width.
SAMPLE_KNN_K = 30
#: Representative rows kept per cluster.
REPRESENTATIVES_PER_CLUSTER = 5


@dataclass(frozen=True, eq=False)
class Clustering:
    """Where every row landed. Clusters are numbered by decreasing size (0 is the largest)."""

    labels: np.ndarray  # (n,) int64, -1 = noise
    nearest_cluster: np.ndarray  # (n,) int64: own cluster, or for noise the nearest one; -1 only if no clusters
    xy: np.ndarray  # (n, 2) float32 map coordinates
    clusters: pl.DataFrame  # one row per cluster, columns as CLUSTERS_SCHEMA
    params: dict[str, Any] = field(default_factory=dict)  # JSON-safe parameters actually used

    @property
    def noise_share(self) -> float:
        """Share of rows HDBSCAN left out of every cluster (0 for no rows)."""
        return float(np.mean(self.labels < 0)) if len(self.labels) else 0.0


class ClusterPipeline(Component):
    """Clusters embedded texts into topics and describes each cluster.

    ``min_cluster_size=None`` derives it from the row count
    (:func:`~dataaudit.cluster.clusterers.derive_min_cluster_size`: max(5, round(√n / 5))).
    ``reducer``, ``clusterer`` and ``mapper`` default to UMAP, HDBSCAN and a 2-D UMAP, built
    per instance. ``seed`` (None: the audit's seed, or 0 on its own) seeds every randomised stage that does not pin its own seed (UMAP and the
    stability resamples); the same input and seed give identical labels and map.

    Past ``max_fit_rows`` rows, reduction, clustering, the map and the stability resamples
    are fitted on a uniform sample of that many rows (seeded), and every other row is placed
    from its nearest neighbours in the kNN graph (:mod:`dataaudit.cluster.assign`): UMAP and
    HDBSCAN grow faster than linearly, the graph is already there, and a 50,000-row sample
    holds every cluster big enough to matter at that scale.

    When no density clusters can be formed — fewer than ``2 * min_cluster_size``
    distinct rows (too few to split; UMAP is skipped, and the map is the PCA of the
    embeddings), or the clusterer finds no structure — the whole set is one cluster with
    stability 1, so every row still has a home cluster.
    """

    _parameter_constraints = {
        "reducer": [Satisfies(lambda stage: callable(getattr(stage, "fit_transform", None)), "a reducer (fit_transform)")],
        "clusterer": [Satisfies(lambda stage: callable(getattr(stage, "fit_predict", None)), "a clusterer (fit_predict)")],
        "mapper": [Satisfies(lambda stage: callable(getattr(stage, "fit_transform", None)), "a mapper (fit_transform)")],
        "min_cluster_size": [Interval(int, 2, None), None],
        "seed": OPTIONAL_SEED,
        "stability_resamples": [Interval(int, 1, None)],
        "max_fit_rows": [Interval(int, 2, None)],
    }

    def __init__(
        self,
        *,
        reducer: Reducer | None = None,
        clusterer: Clusterer | None = None,
        mapper: Mapper | None = None,
        min_cluster_size: int | None = None,
        seed: int | None = None,
        stability_resamples: int = 10,
        max_fit_rows: int = 50_000,
    ):
        self.reducer = reducer if reducer is not None else UMAPReducer()
        self.clusterer = clusterer if clusterer is not None else HDBSCANClusterer()
        self.mapper = mapper if mapper is not None else UMAPMapper()
        self.min_cluster_size = min_cluster_size
        self.seed = seed
        self.stability_resamples = stability_resamples
        self.max_fit_rows = max_fit_rows

    def fit(
        self,
        embeddings: np.ndarray,
        texts: Sequence[str],
        *,
        knn: "KnnGraph | None" = None,
        progress: Progress = NULL_PROGRESS,
    ) -> Clustering:
        """Reduce, cluster and describe ``embeddings`` (one row per text in ``texts``).

        ``knn``, when given, is the graph the audit already built over these embeddings: the
        reducer and the map reuse it rather than search their own (a fit on a sample of large
        data builds one graph for the sample instead).
        """
        if self.seed is None:  # used on its own, outside an audit that passes its seed
            return self.with_seed(0).fit(embeddings, texts, knn=knn, progress=progress)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
            raise ValueError(f"embeddings of shape {embeddings.shape} do not match {len(texts)} texts")
        if self.stability_resamples < 1:
            raise ValueError(f"stability_resamples must be at least 1, got {self.stability_resamples}")
        texts = [text if isinstance(text, str) else "" for text in texts]
        n_rows = len(texts)
        min_cluster_size = self._min_cluster_size(n_rows)
        params = self._params(n_rows, min_cluster_size, knn)

        if n_rows == 0:
            return _empty_clustering(params)
        if _distinct_rows(embeddings) < 2 * min_cluster_size:
            return self._single_cluster(embeddings, texts, pca_2d(embeddings), params, "too_few_distinct_rows")

        fitted = self._fit_rows(n_rows)
        sampled = len(fitted) < n_rows
        params["fitted_rows"] = int(len(fitted))
        # HDBSCAN sees the sample, so it gets the sample's minimum: what a derived size would be
        # for that many rows, or a chosen size scaled by the sampling rate. The full data's own
        # (√n / 5 = 200 at a million rows) would demand 4,000 rows of a cluster through a 5% sample.
        min_cluster_size = self._fit_min_cluster_size(min_cluster_size, len(fitted), n_rows)
        params["fit_min_cluster_size"] = min_cluster_size
        fit_embeddings = embeddings[fitted] if sampled else embeddings
        fit_knn = knn
        if sampled:  # the full graph's neighbours mostly lie outside the sample: one graph of the
            # sample serves the reducer and the map, which would otherwise each search their own
            from dataaudit.neighbors import build_knn

            fit_knn = build_knn(fit_embeddings, k=knn.indices.shape[1] if knn is not None else SAMPLE_KNN_K,
                                seed=self.seed, progress=progress)
        with progress.task("Reducing dimensions"):
            reduced = self.reducer.fit_transform(fit_embeddings, knn=fit_knn, seed=self.seed)
        # The map needs only the reduced points, the clustering and its resamples only them too:
        # each holds one core (a seeded UMAP runs single-threaded), so they run side by side.
        alongside = in_background if len(reduced) >= BACKGROUND_MIN_ROWS else in_place
        clustered = alongside(_cluster_and_resample, reduced, self.clusterer, min_cluster_size, self.stability_resamples,
                              self.seed)
        with progress.task("Mapping"):
            xy = np.asarray(self.mapper.fit_transform(fit_embeddings, reduced=reduced, knn=fit_knn, seed=self.seed),
                            dtype=np.float32)
        with progress.task("Clustering"):
            labels, stability = clustered()
        if not (labels >= 0).any():
            return self._single_cluster(embeddings, texts, xy if not sampled else pca_2d(embeddings), params,
                                        "no_density_clusters")
        if sampled:
            from dataaudit.neighbors import build_knn

            graph = knn if knn is not None and len(knn.indices) == n_rows else build_knn(embeddings, seed=self.seed, progress=progress)
            placement = spread_from_sample(fitted, labels, reduced, xy, neighbours=graph.indices,
                                           similarities=graph.similarities, embeddings=embeddings, progress=progress)
            labels, reduced, xy = placement.labels, placement.points, placement.xy
            params["placement_rounds"] = int(placement.rounds.max())
            params["placed_by_centroid"] = int((placement.rounds < 0).sum())
        with progress.task("Labelling clusters"):
            # Keywords come from the fitted rows: a uniform sample words a cluster as well as all
            # of it, and c-TF-IDF over a million texts costs gigabytes and minutes.
            clusters = _describe_clusters(embeddings, texts, labels, stability, keyword_rows=fitted)
        logger.info("%d clusters, %.1f%% noise, over %d rows (fitted on %d)", clusters.height,
                    100 * np.mean(labels < 0), n_rows, len(fitted))
        return Clustering(
            labels=labels,
            nearest_cluster=nearest_clusters(reduced, labels),
            xy=xy,
            clusters=clusters,
            params=params,
        )

    def get_params(self) -> dict[str, Any]:
        """Every setting that shapes the result, the stages' own included (JSON-safe)."""
        return {"reducer": self.reducer.get_params(), "clusterer": self.clusterer.get_params(),
                "mapper": self.mapper.get_params(), "min_cluster_size": self.min_cluster_size, "seed": self.seed,
                "stability_resamples": self.stability_resamples, "max_fit_rows": self.max_fit_rows}

    def _fit_rows(self, n_rows: int) -> np.ndarray:
        """All rows, or past ``max_fit_rows`` the seeded uniform sample the models are fitted on."""
        return sample_rows(n_rows, self.max_fit_rows, self.seed) if n_rows > self.max_fit_rows else np.arange(n_rows)

    def _fit_min_cluster_size(self, min_cluster_size: int, fitted_rows: int, n_rows: int) -> int:
        if fitted_rows == n_rows:
            return min_cluster_size
        if self._min_cluster_size_derived():
            return derive_min_cluster_size(fitted_rows)
        return max(2, round(min_cluster_size * fitted_rows / n_rows))

    def _min_cluster_size_derived(self) -> bool:
        return self.min_cluster_size is None and self.clusterer.get_params().get("min_cluster_size") is None

    def _min_cluster_size(self, n_rows: int) -> int:
        own = self.clusterer.get_params().get("min_cluster_size")
        if own is not None and self.min_cluster_size is not None and own != self.min_cluster_size:
            raise ValueError(
                f"min_cluster_size is set twice: {self.min_cluster_size} on the pipeline, {own} on the clusterer"
            )
        chosen = self.min_cluster_size if self.min_cluster_size is not None else own
        return int(chosen) if chosen is not None else derive_min_cluster_size(n_rows)

    def _params(self, n_rows: int, min_cluster_size: int, knn: "KnnGraph | None") -> dict[str, Any]:
        return {
            "n_rows": n_rows,
            "min_cluster_size": min_cluster_size,
            "min_cluster_size_derived": self._min_cluster_size_derived(),
            "seed": self.seed,
            "stability_resamples": self.stability_resamples,
            "stability_fraction": STABILITY_FRACTION,
            "max_fit_rows": self.max_fit_rows,
            "knn_given": knn is not None,
            "reducer": self.reducer.get_params(),
            "clusterer": self.clusterer.get_params(),
            "mapper": self.mapper.get_params(),
            "fallback": None,
        }

    def _single_cluster(
        self, embeddings: np.ndarray, texts: list[str], xy: np.ndarray, params: dict[str, Any], reason: str
    ) -> Clustering:
        logger.info("clustering fell back to a single cluster (%s) for %d rows", reason, len(texts))
        labels = np.zeros(len(texts), dtype=np.int64)
        return Clustering(
            labels=labels,
            nearest_cluster=labels.copy(),
            xy=np.asarray(xy, dtype=np.float32),
            clusters=_describe_clusters(embeddings, texts, labels, {0: 1.0},
                                        keyword_rows=self._fit_rows(len(texts))),
            params={**params, "fallback": reason},
        )


def _describe_clusters(
    embeddings: np.ndarray, texts: list[str], labels: np.ndarray, stability: dict[int, float], *, keyword_rows: np.ndarray
) -> pl.DataFrame:
    keywords = class_tfidf_keywords([texts[i] for i in keyword_rows], labels[keyword_rows], top_n=KEYWORDS_PER_CLUSTER)
    representatives = central_members(embeddings, labels, top_n=REPRESENTATIVES_PER_CLUSTER)
    ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
    return pl.DataFrame(
        {
            "cluster": ids.tolist(),
            "size": sizes.tolist(),
            "label": [keyword_label(keywords[int(c)], int(c)) for c in ids],
            "keywords": [keywords[int(c)] for c in ids],
            "representatives": [representatives[int(c)] for c in ids],
            "stability": [stability[int(c)] for c in ids],
        },
        schema=CLUSTERS_SCHEMA,
    )


def _empty_clustering(params: dict[str, Any]) -> Clustering:
    return Clustering(
        labels=np.zeros(0, dtype=np.int64),
        nearest_cluster=np.zeros(0, dtype=np.int64),
        xy=np.zeros((0, 2), dtype=np.float32),
        clusters=pl.DataFrame(schema=CLUSTERS_SCHEMA),
        params={**params, "fallback": "empty"},
    )


def _distinct_rows(embeddings: np.ndarray, *, block_rows: int = 65_536) -> int:
    """How many different rows there are, counted on 64-bit fingerprints of their bytes.

    Sorting the rows themselves would copy the whole matrix (1.5 GB at a million 384-d rows);
    fingerprints cost 8 bytes a row, and a collision could only hide a distinct row in a count
    that merely decides whether clustering is worth trying.
    """
    if not embeddings.shape[1]:
        return min(len(embeddings), 1)
    words = np.ascontiguousarray(embeddings, dtype=np.float32).view(np.uint32)
    multipliers = np.random.default_rng(0x5EED).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    fingerprints = np.empty(len(words), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(words), block_rows):
            block = words[start:start + block_rows].astype(np.uint64)
            block *= multipliers
            fingerprints[start:start + block_rows] = np.bitwise_xor.reduce(block + (block >> np.uint64(29)), axis=1)
    return int(np.unique(fingerprints).size)


def _cluster_and_resample(reduced: np.ndarray, clusterer: Clusterer, min_cluster_size: int, resamples: int,
                          seed: int) -> tuple[np.ndarray, dict[int, float]]:
    """Labels numbered by size, and each cluster's bootstrap stability (none without clusters)."""
    labels = _numbered_by_size(clusterer.fit_predict(reduced, min_cluster_size=min_cluster_size))
    if not (labels >= 0).any():
        return labels, {}
    return labels, bootstrap_stability(reduced, labels, clusterer, min_cluster_size=min_cluster_size, resamples=resamples,
                                       fraction=STABILITY_FRACTION, seed=seed)


def _numbered_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size (ties: earliest first row); noise stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    ids, first_row, sizes = np.unique(labels[labels >= 0], return_index=True, return_counts=True)
    if ids.size == 0:
        return labels
    clustered_rows = np.flatnonzero(labels >= 0)
    order = np.lexsort((clustered_rows[first_row], -sizes))
    new_id = np.empty(ids.size, dtype=np.int64)
    new_id[order] = np.arange(ids.size)
    renumbered = labels.copy()
    renumbered[labels >= 0] = new_id[np.searchsorted(ids, labels[labels >= 0])]
    return renumbered
