"""Selection strategies: how a budget of rows is chosen from the cleaned pool.

Every strategy sees the same :class:`Pool` (the rows no dropping finding flagged, with their
cluster and the quota each cluster gets) and returns a :class:`Picks`: the chosen pool positions
in pick order, each pool row's score under the strategy, and a short reason for people. The
names are registered in :data:`dataaudit.registry.STRATEGIES`, which the CLI's choices come from.

- ``diverse`` (default): facility location inside each cluster, up to its quota;
- ``random``: a seeded random sample inside each cluster, up to the same quota (the baseline
  the others must beat);
- ``longest``: the rows with the most response tokens, whatever their cluster ("Long is more",
  arXiv 2402.04833);
- ``learnability``: the highest instruction-following difficulty below 1 (Cherry / Superfiltering,
  arXiv 2308.12032, 2402.00530), read from an audit that ran the ``learnability`` check.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from dataaudit.errors import UsageError
from dataaudit.params import Component, Interval
from dataaudit.selection.diversity import EPSILON, MAX_DEMAND, facility_location


@dataclass
class Pool:
    """The rows a strategy may choose from, as positions into the dataset frame.

    ``clusters`` and ``quota`` are aligned: quota[c] rows are to come from cluster clusters[c].
    The costly inputs (embeddings, token counts, audit columns) are loaded on first use only.
    """

    positions: np.ndarray
    cluster_of: np.ndarray
    clusters: np.ndarray
    quota: np.ndarray
    budget: int
    seed: int
    embeddings: Callable[[], np.ndarray]
    response_tokens: Callable[[], np.ndarray]
    audit_column: Callable[[str], np.ndarray | None]


@dataclass
class Picks:
    """A strategy's choice: pool positions in pick order, and a score per pool row.

    ``score_name`` names the score in the selection table and ``reason`` is the sentence a
    selected row gets there.
    """

    order: np.ndarray
    score: np.ndarray
    score_name: str
    reason: str


class SelectionStrategy(Component, ABC):
    """Base class of the ways :func:`~dataaudit.selection.select` picks rows from the pool.

    Subclasses set ``name`` and implement :meth:`pick`; registered in
    :data:`dataaudit.registry.STRATEGIES` they become a ``--strategy`` choice.
    """

    name: ClassVar[str]
    #: Whether the per-cluster quotas bind this strategy (reported beside the picks).
    uses_quotas: ClassVar[bool] = True

    def __init__(self) -> None:  # no parameters; subclasses with some declare their own
        pass

    @abstractmethod
    def pick(self, pool: Pool) -> Picks:
        """Choose ``pool.budget`` rows of ``pool``, within the cluster quotas when ``uses_quotas``."""


class DiverseStrategy(SelectionStrategy):
    """Facility location over the prompt embeddings inside each cluster.

    See :mod:`dataaudit.selection.diversity`; the score is each pick's marginal coverage gain.
    """

    name = "diverse"
    _parameter_constraints = {"epsilon": [Interval(float, 0, 1, closed="neither")],
                              "max_demand": [Interval(int, 1, None)]}

    def __init__(self, *, epsilon: float = EPSILON, max_demand: int = MAX_DEMAND):
        self.epsilon = epsilon
        self.max_demand = max_demand

    def pick(self, pool: Pool) -> Picks:
        """Run facility location in each cluster up to its quota (seeded per cluster)."""
        vectors = pool.embeddings()
        score = np.zeros(len(pool.positions))
        order: list[np.ndarray] = []
        for index, (cluster, quota) in enumerate(zip(pool.clusters, pool.quota)):
            members = np.flatnonzero(pool.cluster_of == cluster)
            if quota == 0:
                continue
            picks, gains = facility_location(vectors[members], int(quota), seed=_cluster_seed(pool.seed, index),
                                             epsilon=self.epsilon, max_demand=self.max_demand)
            score[members[picks]] = gains
            order.append(members[picks])
        return Picks(order=_joined(order), score=score, score_name="coverage_gain",
                     reason="picked for coverage of its cluster (facility location)")


class RandomStrategy(SelectionStrategy):
    """A seeded uniform sample inside each cluster, up to the same quotas as ``diverse``."""

    name = "random"

    def pick(self, pool: Pool) -> Picks:
        """Draw each cluster's quota at random (seeded per cluster); picks score 1, the rest 0.5."""
        score = np.zeros(len(pool.positions))
        order = []
        for index, (cluster, quota) in enumerate(zip(pool.clusters, pool.quota)):
            members = np.flatnonzero(pool.cluster_of == cluster)
            chosen = np.random.default_rng(_cluster_seed(pool.seed, index)).permutation(members)[: int(quota)]
            score[members] = 0.5
            score[chosen] = 1.0
            order.append(chosen)
        return Picks(order=_joined(order), score=score, score_name="random",
                     reason="picked at random inside its cluster")


class LongestStrategy(SelectionStrategy):
    """The ``budget`` rows with the most response tokens (SmolLM2's tokenizer).

    The ranking is over the whole pool; ties go to the earlier row.
    """

    name = "longest"
    uses_quotas = False

    def pick(self, pool: Pool) -> Picks:
        """Rank the whole pool by response tokens; the cluster quotas do not apply."""
        tokens = pool.response_tokens().astype(np.float64)
        order = np.lexsort((np.arange(len(tokens)), -tokens))[: pool.budget]
        return Picks(order=order, score=tokens, score_name="response_tokens",
                     reason="picked for its long response")


class LearnabilityStrategy(SelectionStrategy):
    """The ``budget`` rows of highest IFD below ``max_ifd``.

    Those are hard for the model yet helped by their prompt (IFD at or above 1 means the prompt
    does not help: a mismatched pair, never picked).
    """

    name = "learnability"
    uses_quotas = False
    _parameter_constraints = {"max_ifd": [Interval(float, 0, None, closed="neither")]}

    def __init__(self, *, max_ifd: float = 1.0):
        self.max_ifd = max_ifd

    def pick(self, pool: Pool) -> Picks:
        """Rank the pool by the audit's IFD below ``max_ifd``.

        Refuses (UsageError) when the audit did not run the learnability check, or when fewer
        pool rows than the budget qualify.
        """
        ratio = pool.audit_column("learnability_ifd")
        if ratio is None:
            raise UsageError("the learnability strategy reads each row's IFD from the audit; re-run the audit with "
                             "the learnability check (--checks <the others>,learnability)")
        ratio = np.asarray(ratio, dtype=np.float64)
        eligible = np.isfinite(ratio) & (ratio < self.max_ifd)
        if int(eligible.sum()) < pool.budget:
            raise UsageError(f"only {int(eligible.sum())} pool rows have an IFD below {self.max_ifd:g}; "
                             f"the budget is {pool.budget}")
        key = np.where(eligible, ratio, -np.inf)
        order = np.lexsort((np.arange(len(key)), -key))[: pool.budget]
        return Picks(order=order, score=np.where(np.isfinite(ratio), ratio, np.nan), score_name="ifd",
                     reason=f"picked for its high instruction-following difficulty (below {self.max_ifd:g})")


def _cluster_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, index])


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
