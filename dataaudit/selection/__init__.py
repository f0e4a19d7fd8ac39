"""``select``: which rows to train on, within a budget, from an audited dataset.

Every strategy chooses from the same cleaned pool: the rows no dropping finding flags (the
checks and severity are export's, see :func:`dataaudit.export.dropping_findings`). The budget is
a row count or a percentage of that pool; one larger than the pool is refused. Strategies that
honour cluster quotas (``diverse``, ``random``) split the budget over the audit's clusters by
their share of the pool, or, with a production sample, by a mix of that and the share of
production traffic nearest to each cluster (``production_weight``), so clusters production uses
are not starved and clusters it does not use are not dropped.

The result is data (:class:`Selection`): one table row per input row (selected or not, the
strategy's score, the cluster quota, the reason), the per-cluster counts, and a summary.
:meth:`Selection.write` writes the chosen records byte for byte, the rest to an optional
rejected file (a lossless partition), and the table as Parquet.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import polars as pl

from dataaudit.errors import UsageError

if TYPE_CHECKING:
    from dataaudit.dataset import Dataset
    from dataaudit.embed.base import Embedder
    from dataaudit.result import AuditResult
    from dataaudit.selection.strategies import SelectionStrategy

logger = logging.getLogger(__name__)

__all__ = ["TABLE_FILE", "Selection", "parse_budget", "select"]

TABLE_FILE = "selection.parquet"
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_budget(budget: int | str, pool: int, *, total: int | None = None) -> int:
    """Turn a budget (an int, or ``"N"`` / ``"P%"`` of the pool) into a number of rows.

    A percentage rounds to the nearest row. Refuses a budget below one row or above the pool.
    """
    if isinstance(budget, bool):
        raise UsageError(f"budget must be a row count or a percentage, got {budget!r}")
    if isinstance(budget, int):
        rows = budget
    else:
        match = _BUDGET.match(str(budget))
        if match is None:
            raise UsageError(f"budget must be a row count (5000) or a percentage of the pool (20%), got {budget!r}")
        value, percent = float(match.group(1)), bool(match.group(2))
        if percent:
            if value > 100:
                raise UsageError(f"a budget of {budget} is more than the whole pool")
            rows = int(round(pool * value / 100))
        elif value != int(value):
            raise UsageError(f"a budget in rows must be a whole number, got {budget!r}")
        else:
            rows = int(value)
    if rows < 1:
        raise UsageError(f"the budget {budget!r} selects no rows (pool of {pool})")
    if rows > pool:
        flagged = f" after dropping {total - pool} flagged row(s) of {total}" if total is not None else ""
        raise UsageError(f"the budget of {rows} rows is larger than the pool: {pool} row(s) remain{flagged}; "
                         f"ask for at most {pool} (or 100%)")
    return rows


@dataclass
class Selection:
    """What :func:`select` chose, and why.

    ``table`` has one row per input row (``row``, ``selected``, ``strategy``, ``cluster``,
    ``score``, ``score_name``, ``pick_order``, ``cluster_quota``, ``flagged_by``, ``reason``);
    ``clusters`` the per-cluster pool, quota and picks against production's share.
    """

    table: pl.DataFrame
    clusters: pl.DataFrame
    summary: dict[str, Any]
    dataset: "Dataset" = field(repr=False)

    @property
    def rows(self) -> list[int]:
        """Selected rows, in input order."""
        return self.table.filter(pl.col("selected")).get_column("row").to_list()

    def write(self, out: str | os.PathLike, *, table: str | os.PathLike | None = None,
              rejected: str | os.PathLike | None = None) -> dict[str, int]:
        """Write the selected records to ``out`` (byte for byte for JSONL input).

        Every other line goes with its reason to ``rejected`` when given, and the table to ``table``
        (default: ``selection.parquet`` beside ``out``).
        """
        from dataaudit.io.atomic import atomic_path
        from dataaudit.io.writers import write_partition

        out = Path(out)
        reasons = {int(row): [reason] for row, reason in
                   self.table.filter(~pl.col("selected")).select("row", "reason").iter_rows()}
        if rejected is not None:
            counts = write_partition(self.dataset, clean=out, rejected=rejected, drops=reasons)
        else:
            with tempfile.TemporaryDirectory(prefix=".dataaudit-select-", dir=out.parent if str(out.parent) else ".") \
                    as scratch:
                counts = write_partition(self.dataset, clean=out, rejected=Path(scratch) / "rest.jsonl", drops=reasons)
        table_path = Path(table) if table is not None else out.parent / TABLE_FILE
        with atomic_path(table_path) as temp:
            self.table.write_parquet(temp)
        return {"selected": counts.kept, "not_selected": counts.dropped, "bad": counts.bad}


def select(dataset: "Dataset | str | os.PathLike", audit: "AuditResult | str | os.PathLike", *, budget: int | str,
           strategy: "str | SelectionStrategy" = "diverse", production: "Dataset | str | os.PathLike | None" = None,
           drop: Iterable[str] | None = None, min_severity: str = "warning", production_weight: float = 0.5,
           embedder: "Embedder | None" = None, seed: int = 0) -> Selection:
    """Choose ``budget`` rows of ``dataset`` with ``strategy`` from the rows ``audit`` does not flag.

    ``strategy`` is a name in :data:`dataaudit.registry.STRATEGIES` or an instance. ``drop`` and
    ``min_severity`` say which findings remove a row from the pool (default: every check's, at
    warning or worse). ``production`` (prompts are enough) weights the cluster quotas
    by traffic, ``production_weight`` of the way (0: pool shares only, 1: production only).
    ``embedder`` defaults to the audit's MiniLM behind the embedding cache, so an audited dataset's
    prompts are not embedded again. Deterministic for ``seed``.
    """
    from dataaudit.export import drop_reasons
    from dataaudit.io.load import load
    from dataaudit.registry import STRATEGIES
    from dataaudit.result import AuditResult
    from dataaudit.selection.diversity import allocate
    from dataaudit.selection.strategies import Pool

    if not 0.0 <= production_weight <= 1.0:
        raise UsageError(f"production_weight must be between 0 and 1, got {production_weight}")
    dataset = dataset if not isinstance(dataset, (str, os.PathLike)) else load(dataset, skip_bad_lines=True)
    audit = audit if isinstance(audit, AuditResult) else AuditResult.load(audit)
    audit.require_same_data(dataset)
    chosen = STRATEGIES.load(strategy)() if isinstance(strategy, str) else strategy
    frame = dataset.frame
    rows = frame.get_column("row").to_numpy()
    reasons = drop_reasons(audit.findings, drop=drop, min_severity=min_severity)
    flagged = np.isin(rows, np.fromiter(reasons, dtype=np.int64, count=len(reasons)))
    positions = np.flatnonzero(~flagged)
    n_rows = parse_budget(budget, len(positions), total=len(rows))

    cluster_of_row = _clusters(audit, rows)
    cluster_ids, pool_cluster = np.unique(cluster_of_row[positions], return_inverse=True)
    capacity = np.bincount(pool_cluster, minlength=len(cluster_ids))
    pool_share = capacity / capacity.sum()
    embedder = embedder if embedder is not None else _default_embedder()
    cache: dict[str, np.ndarray] = {}

    def embeddings() -> np.ndarray:
        if "pool" not in cache:
            texts = frame.get_column("prompt").to_list()
            cache["pool"] = np.asarray(embedder.embed([texts[i] for i in positions]), dtype=np.float32)
        return cache["pool"]

    production_share = np.zeros(len(cluster_ids))
    if production is not None:
        production = production if not isinstance(production, (str, os.PathLike)) else load(production,
                                                                                             skip_bad_lines=True)
        production_share = _production_share(embeddings(), pool_cluster, len(cluster_ids),
                                             embedder.embed(production.prompts))
    weights = (1 - production_weight) * pool_share + production_weight * production_share \
        if production is not None else pool_share
    quota = allocate(n_rows, weights, capacity)
    pool = Pool(positions=positions, cluster_of=pool_cluster, clusters=np.arange(len(cluster_ids)), quota=quota,
                budget=n_rows, seed=seed, embeddings=embeddings,
                response_tokens=lambda: _response_tokens([frame.get_column("response")[int(i)] for i in positions]),
                audit_column=lambda name: _audit_column(audit, rows[positions], name))
    picks = chosen.pick(pool)
    order = np.asarray(picks.order, dtype=np.int64)
    if len(order) != n_rows or len(np.unique(order)) != n_rows:
        raise RuntimeError(f"strategy {chosen.name!r} picked {len(np.unique(order))} distinct rows, not {n_rows}")
    table = _table(rows, positions, order, picks, chosen, cluster_ids, pool_cluster, quota, cluster_of_row, reasons)
    picked = np.bincount(pool_cluster[order], minlength=len(cluster_ids))
    clusters = pl.DataFrame({
        "cluster": cluster_ids.astype(np.int64), "pool": capacity.astype(np.int64), "quota": quota.astype(np.int64),
        "selected": picked.astype(np.int64), "pool_share": pool_share,
        "production_share": production_share if production is not None else np.full(len(cluster_ids), np.nan),
        "selected_share": picked / n_rows,
    })
    summary = {"strategy": chosen.name, "params": chosen.get_params(), "budget": n_rows, "rows": len(rows),
               "pool": len(positions), "flagged": int(flagged.sum()), "seed": seed, "min_severity": min_severity,
               "production": production is not None, "production_weight": production_weight if production is not None
               else None, "quotas_bind": chosen.uses_quotas}
    logger.info("selected %d of %d pool rows (%d flagged) with %s", n_rows, len(positions), int(flagged.sum()),
                chosen.name)
    return Selection(table=table, clusters=clusters, summary=summary, dataset=dataset)


def _table(rows, positions, order, picks, strategy, cluster_ids, pool_cluster, quota, cluster_of_row, reasons):
    n = len(rows)
    selected = np.zeros(n, dtype=bool)
    selected[positions[order]] = True
    score = np.full(n, np.nan)
    score[positions] = picks.score
    pick_order = np.full(n, -1, dtype=np.int64)
    pick_order[positions[order]] = np.arange(len(order))
    row_quota = np.full(n, -1, dtype=np.int64)
    row_quota[positions] = quota[pool_cluster]
    reason = np.empty(n, dtype=object)
    for index in np.flatnonzero(~np.isin(np.arange(n), positions)).tolist():
        reason[index] = "flagged: " + "; ".join(reasons[int(rows[index])])
    left_out = np.setdiff1d(positions, positions[order])
    if strategy.uses_quotas:
        cluster_of_pool = np.full(n, -1, dtype=np.int64)
        cluster_of_pool[positions] = pool_cluster
        for index in left_out.tolist():
            c = cluster_of_pool[index]
            reason[index] = f"not picked: cluster {int(cluster_ids[c])}'s quota of {int(quota[c])} was filled"
    else:
        for index in left_out.tolist():
            reason[index] = f"not picked: below the budget's cut on {picks.score_name}"
    reason[positions[order]] = picks.reason
    flagged_by = [sorted({text.split(" (", 1)[0] for text in reasons.get(int(row), [])}) for row in rows]
    return pl.DataFrame({
        "row": pl.Series(rows, dtype=pl.Int64),
        "selected": selected,
        "strategy": [strategy.name] * n,
        "cluster": pl.Series(cluster_of_row, dtype=pl.Int64),
        "score": score,
        "score_name": [picks.score_name] * n,
        "pick_order": pl.Series(np.where(pick_order >= 0, pick_order, None).tolist(), dtype=pl.Int64),
        "cluster_quota": pl.Series(np.where(row_quota >= 0, row_quota, None).tolist(), dtype=pl.Int64),
        "flagged_by": pl.Series(flagged_by, dtype=pl.List(pl.String)),
        "reason": pl.Series(reason.tolist(), dtype=pl.String),
    })


def _clusters(audit: "AuditResult", rows: np.ndarray) -> np.ndarray:
    """Each row's cluster (noise rows by their nearest cluster); one cluster (0) when the audit has none."""
    column = next((c for c in ("nearest_cluster", "cluster") if c in audit.rows.columns), None)
    if column is None:
        return np.zeros(len(rows), dtype=np.int64)
    by_row = dict(zip(audit.rows.get_column("row").to_list(), audit.rows.get_column(column).to_list()))
    return np.array([by_row.get(int(row)) if by_row.get(int(row)) is not None else -1 for row in rows], dtype=np.int64)


def _production_share(pool_vectors: np.ndarray, pool_cluster: np.ndarray, n_clusters: int,
                      production_vectors: np.ndarray) -> np.ndarray:
    """Share of production prompts whose nearest pool row is in each cluster."""
    from dataaudit.neighbors import query_knn

    if len(production_vectors) == 0:
        return np.zeros(n_clusters)
    graph = query_knn(pool_vectors, np.asarray(production_vectors, dtype=np.float32), k=1)
    nearest = np.asarray(graph.indices)[:, 0]
    counts = np.bincount(pool_cluster[nearest], minlength=n_clusters)
    return counts / counts.sum()


def _audit_column(audit: "AuditResult", rows: np.ndarray, name: str) -> np.ndarray | None:
    if name not in audit.rows.columns:
        return None
    by_row = dict(zip(audit.rows.get_column("row").to_list(), audit.rows.get_column(name).to_list()))
    return np.array([by_row.get(int(row)) if by_row.get(int(row)) is not None else np.nan for row in rows],
                    dtype=np.float64)


def _response_tokens(responses: list[str | None]) -> np.ndarray:
    """Response tokens by the reference model's tokenizer (Rust, batched)."""
    from dataaudit.features.tokens import load_tokenizer

    tokenizer = load_tokenizer(None)
    encoded = tokenizer.backend_tokenizer.encode_batch([response or "" for response in responses],
                                                      add_special_tokens=False)
    return np.array([len(item.ids) for item in encoded], dtype=np.int64)


def _default_embedder() -> "Embedder":
    from dataaudit.runner import default_embedder

    return default_embedder()
