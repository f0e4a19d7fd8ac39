"""Name registries that cost nothing to import.

The CLI builds its choices (engines, fine-tune backends) from these at start-up, so they name
each component by ``"module:attribute"`` and import it only when it is used: ``dataaudit
--help`` stays instant and a name is spelled in exactly one place.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyRegistry:
    """``name → "package.module:Attribute"``, resolved on first use."""

    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def name_of(self, component: object) -> str | None:
        """The name ``component``'s class is registered under (None for a class of the caller's own)."""
        path = f"{type(component).__module__}:{type(component).__qualname__}"
        return next((name for name, entry in self._entries.items() if entry == path), None)

    def load(self, name: str) -> Any:
        """The registered object; a UsageError that lists the names for an unknown one."""
        from dataaudit.errors import UsageError

        if name not in self._entries:
            raise UsageError(f"unknown {self.kind} {name!r}; one of {', '.join(self._entries)}")
        module, _, attribute = self._entries[name].partition(":")
        return getattr(importlib.import_module(module), attribute)


#: Where reading, embedding and the kNN graphs run (``--engine``).
ENGINES = LazyRegistry("engine", {"local": "dataaudit.engine.local:LocalEngine",
                                  "ray": "dataaudit.engine.ray_engine:RayEngine"})
#: Reference fine-tune model families (``--backend``; ``auto`` chooses between them).
BACKENDS = LazyRegistry("backend", {"encoder": "dataaudit.finetune.encoder:EncoderBackend",
                                    "causal-lm": "dataaudit.finetune.causal_lm:CausalLMBackend"})
#: Sentence embedders (``[embed] name``); ``hashing`` is the fast deterministic one for smoke tests.
EMBEDDERS = LazyRegistry("embedder", {"sentence-transformers": "dataaudit.embed.sentence_transformers:SentenceTransformerEmbedder",
                                      "hashing": "dataaudit.embed.base:HashingEmbedder"})
#: Stages of the cluster pipeline (``[cluster.reducer]``, ``[cluster.clusterer]``, ``[cluster.mapper]`` ``name``).
REDUCERS = LazyRegistry("reducer", {"umap": "dataaudit.cluster.reducers:UMAPReducer",
                                    "none": "dataaudit.cluster.reducers:NoReducer"})
CLUSTERERS = LazyRegistry("clusterer", {"hdbscan": "dataaudit.cluster.clusterers:HDBSCANClusterer"})
MAPPERS = LazyRegistry("mapper", {"umap": "dataaudit.cluster.mappers:UMAPMapper",
                                  "pca": "dataaudit.cluster.mappers:PCAMapper"})
#: Selection strategies (``dataaudit select --strategy``; the first is the default).
STRATEGIES = LazyRegistry("selection strategy", {"diverse": "dataaudit.selection.strategies:DiverseStrategy",
                                                 "random": "dataaudit.selection.strategies:RandomStrategy",
                                                 "longest": "dataaudit.selection.strategies:LongestStrategy",
                                                 "learnability": "dataaudit.selection.strategies:LearnabilityStrategy"})
#: Language-model scorers the checks use without importing the fine-tune (``learnability``).
SCORERS = LazyRegistry("scorer", {"causal-lm": "dataaudit.finetune.scoring:LearnabilityScorer"})
