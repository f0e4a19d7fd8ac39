"""The audit context: costly shared artefacts, computed once on first use.

Checks declare what they need (``needs``); the runner asks the context, which computes
each artefact at most once — embeddings per view, the kNN graph per view, the clustering —
and records how long each stage took.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

from dataaudit.artefacts import NULL_ARTEFACTS, artefact_key
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.timing import timed

if TYPE_CHECKING:
    import polars as pl

    from dataaudit.artefacts import ArtefactCache, NullArtefactCache
    from dataaudit.cluster.pipeline import Clustering, ClusterPipeline
    from dataaudit.dataset import Dataset
    from dataaudit.embed.base import Embedder
    from dataaudit.engine.base import Engine, FrameFunction
    from dataaudit.neighbors import KnnGraph

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Embedding views a check may ask for.
VIEWS = ("prompt", "response", "pair")


class AuditContext:
    """Shared, lazily computed artefacts for one dataset.

    ``embeddings`` may hold precomputed vectors per view (``"prompt"``, ``"response"``);
    the ``"pair"`` view (prompt and response together) is derived from those two, so it
    costs no extra model call. ``engine`` (given by the caller, say
    :class:`~dataaudit.engine.local.LocalEngine`) decides where embedding, the kNN graphs and
    per-row feature extraction run; the results are the same with every engine.
    """

    def __init__(
        self,
        *,
        dataset: "Dataset",
        engine: "Engine",
        embedder: "Embedder",
        cluster_pipeline: "ClusterPipeline",
        knn_k: int = 30,
        seed: int = 0,
        embeddings: Mapping[str, np.ndarray] | None = None,
        progress: Progress = NULL_PROGRESS,
        artefacts: "ArtefactCache | NullArtefactCache" = NULL_ARTEFACTS,
        eval_sets: Sequence["Dataset"] = (),
    ):
        self.dataset = dataset
        self.embedder = embedder
        self.cluster_pipeline = cluster_pipeline
        self.knn_k = knn_k
        self.seed = seed
        self.progress = progress
        self.engine = engine
        self.artefacts = artefacts
        #: Benchmark test sets to look for in the training data (the contamination check).
        self.eval_sets: tuple["Dataset", ...] = tuple(eval_sets)
        self._eval_embeddings: dict[str, np.ndarray] = {}
        self.timings: dict[str, float] = {}
        self._embeddings: dict[str, np.ndarray] = {}
        self._knn: dict[str, "KnnGraph"] = {}
        self._knn_keys: dict[str, str] = {}
        self._clustering: "Clustering | None" = None
        self._shared: dict[str, Any] = {}
        for view, matrix in (embeddings or {}).items():
            self._embeddings[view] = _validated(view, matrix, len(dataset))

    def shared(self, name: str, make: Callable[[], T]) -> T:
        """A derived artefact that several checks read, made once per audit by the first to ask.

        ``name`` must belong to one maker: each such artefact has one function that asks for it
        (e.g. :func:`dataaudit.features.response_format.response_formats`).
        """
        if name not in self._shared:
            self._shared[name] = make()
        return self._shared[name]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; repeated stages of the same name add up."""
        with timed(self.timings, name):
            yield

    def embed_texts(self, texts: Sequence[str], *, stage: str = "embed") -> np.ndarray:
        """Embed arbitrary texts with the audit's embedder (e.g. production prompts)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self.stage(stage):
            return self.engine.embed(self.embedder, list(texts), progress=self.progress)

    def eval_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """The audit's embeddings of eval-set texts, computed once per distinct list of texts."""
        key = artefact_key(list(texts))
        if key not in self._eval_embeddings:
            self._eval_embeddings[key] = self.embed_texts(list(texts), stage="embed_eval")
        return self._eval_embeddings[key]

    def embeddings(self, view: str = "prompt") -> np.ndarray:
        if view not in VIEWS:
            raise ValueError(f"unknown embedding view {view!r}; one of {VIEWS}")
        if view not in self._embeddings:
            if view == "pair":
                # In place, in float32: one rows x dims block (1.5 GB at a million rows), not three.
                pair = np.add(self.embeddings("prompt"), self.embeddings("response"), dtype=np.float32)
                norms = np.sqrt(np.einsum("ij,ij->i", pair, pair))[:, None]
                pair /= np.maximum(norms, 1e-12)
                self._embeddings[view] = pair
            else:
                texts = self.dataset.prompts if view == "prompt" else self.dataset.responses
                self._embeddings[view] = self.embed_texts(texts, stage=f"embed_{view}")
        return self._embeddings[view]

    def knn(self, view: str = "prompt") -> "KnnGraph":
        if view not in self._knn:
            vectors = self.embeddings(view)
            with self.stage(f"knn_{view}"):
                self._knn[view] = self.artefacts.knn(
                    lambda: self._knn_key(view),
                    lambda: self.engine.knn(vectors, k=self.knn_k, seed=self.seed, progress=self.progress))
        return self._knn[view]

    def _knn_key(self, view: str) -> str:
        if view not in self._knn_keys:
            self._knn_keys[view] = artefact_key("knn", self.embeddings(view), self.knn_k, self.seed, repr(self.engine))
        return self._knn_keys[view]

    def map_frame(self, function: "FrameFunction", frame: "pl.DataFrame") -> "pl.DataFrame":
        """Per-row work (``function`` must treat rows independently) on the audit's engine."""
        return self.engine.map_frame(function, frame, progress=self.progress)

    @property
    def clustering(self) -> "Clustering":
        if self._clustering is None:
            vectors = self.embeddings("prompt")
            graph = self.knn("prompt")
            with self.stage("cluster"):
                self._clustering = self.artefacts.clustering(
                    lambda: artefact_key("clustering", self._knn_key("prompt"), self.dataset.prompts,
                                         self.cluster_pipeline.get_params()),
                    lambda: self.cluster_pipeline.fit(vectors, self.dataset.prompts, knn=graph, progress=self.progress))
        return self._clustering

    def require(self, needs: Sequence[str]) -> None:
        """Compute the artefacts a check declares, so its own timing excludes them.

        A need is an artefact name, with a view after an underscore where it has views:
        ``clustering``, ``knn_prompt``, ``embeddings_response``.
        """
        makers = {"clustering": lambda _view: self.clustering, "knn": self.knn, "embeddings": self.embeddings}
        for need in needs:
            artefact, _, view = need.partition("_")
            if artefact not in makers:
                raise ValueError(f"unknown artefact {need!r}")
            makers[artefact](view)


def _validated(view: str, matrix: np.ndarray, rows: int) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        from dataaudit.errors import UsageError

        raise UsageError(f"precomputed {view} embeddings have shape {matrix.shape}; expected ({rows}, dim)")
    from dataaudit.neighbors import unit_rows

    return unit_rows(matrix, f"precomputed {view} embeddings")
