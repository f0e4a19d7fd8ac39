"""Clustering of embedded texts into topics: reduce → cluster → map → label → stability.

Only numpy and polars are imported here; UMAP and HDBSCAN load when a stage runs.
"""

from dataaudit.cluster.clusterers import Clusterer, HDBSCANClusterer, derive_min_cluster_size
from dataaudit.cluster.labels import class_tfidf_keywords, keyword_label
from dataaudit.cluster.mappers import Mapper, PCAMapper, UMAPMapper
from dataaudit.cluster.pipeline import CLUSTERS_SCHEMA, Clustering, ClusterPipeline
from dataaudit.cluster.reducers import NoReducer, Reducer, UMAPReducer
from dataaudit.cluster.representatives import central_members
from dataaudit.cluster.stability import bootstrap_stability

__all__ = [
    "CLUSTERS_SCHEMA",
    "ClusterPipeline",
    "Clusterer",
    "Clustering",
    "HDBSCANClusterer",
    "Mapper",
    "NoReducer",
    "PCAMapper",
    "Reducer",
    "UMAPMapper",
    "UMAPReducer",
    "bootstrap_stability",
    "central_members",
    "class_tfidf_keywords",
    "derive_min_cluster_size",
    "keyword_label",
]
