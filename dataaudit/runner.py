"""The audit runner: load → embed → cluster → checks → coverage → AuditResult.

Every check's :meth:`~dataaudit.checks.base.Check.prepare` runs before anything is embedded,
so a configuration error (:class:`~dataaudit.errors.UsageError`) stops the audit in seconds.
Checks then run in isolation: one that raises is recorded as failed in the summary with its
error, and the others still run. The result says so (:attr:`AuditResult.status`,
:attr:`AuditResult.failed_checks`) rather than raising, so the other checks' findings are kept;
a gate must read it (the CLI's ``--fail-on`` exits 4).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import polars as pl

from dataaudit._version import __version__
from dataaudit.artefacts import NULL_ARTEFACTS
from dataaudit.checks import CheckSpec, available_checks, make_checks
from dataaudit.checks.base import FINDING_SCHEMA, Check
from dataaudit.context import AuditContext
from dataaudit.dataset import Dataset
from dataaudit.errors import DataAuditError, UsageError
from dataaudit.io.options import LoadOptions
from dataaudit.jsonsafe import json_safe
from dataaudit.params import with_seed
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.result import AuditResult
from dataaudit.severity import SEVERITIES, rank_expr
from dataaudit.summary import SCHEMA_VERSION, AuditSummary

if TYPE_CHECKING:
    from dataaudit.artefacts import ArtefactCache, NullArtefactCache
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.config import AuditConfig
    from dataaudit.coverage import CoverageAnalysis
    from dataaudit.embed.base import Embedder
    from dataaudit.engine import Engine

logger = logging.getLogger(__name__)


def default_embedder(*, model: str | None = None, cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                     precision: str = "auto", embedder: "Embedder | None" = None) -> "Embedder":
    """Put ``embedder`` behind an on-disk cache (or none).

    ``embedder`` defaults to the sentence-transformers ``model`` at ``precision``.
    """
    from dataaudit.embed import (
        CachingEmbedder,
        EmbeddingCache,
        NullCache,
        SentenceTransformerEmbedder,
        default_cache_dir,
    )

    cache = EmbeddingCache(directory=cache_dir or default_cache_dir()) if use_cache else NullCache()
    inner = embedder if embedder is not None else SentenceTransformerEmbedder(model=model, precision=precision)
    return CachingEmbedder(embedder=inner, cache=cache)


def audit(
    dataset: Dataset | str | os.PathLike,
    *,
    production: Dataset | str | os.PathLike | None = None,
    checks: CheckSpec | None = None,
    embedder: "Embedder | None" = None,
    cluster_pipeline: "ClusterPipeline | None" = None,
    coverage: "CoverageAnalysis | None" = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
    knn_k: int | None = None,
    seed: int | None = None,
    progress: Progress = NULL_PROGRESS,
    engine: "str | Engine" = "local",
    artefacts: "ArtefactCache | NullArtefactCache" = NULL_ARTEFACTS,
    eval_sets: Sequence[Dataset | str | os.PathLike] = (),
    config: "AuditConfig | Mapping[str, Any] | str | os.PathLike | None" = None,
    baseline: "AuditResult | str | os.PathLike | None" = None,
) -> AuditResult:
    """Audit ``dataset`` (a :class:`Dataset` or a path) and return the results as data.

    ``embedder`` defaults to all-MiniLM-L6-v2 (shipped offline) behind the default cache;
    ``embeddings`` may hold precomputed ``{"prompt": ..., "response": ...}`` vectors.
    ``production`` (prompts are enough) turns on the coverage-gap analysis. ``engine``
    (``"local"``, ``"ray"`` or an engine instance such as ``RayEngine(address="auto")``) runs
    reading, embedding and the kNN graphs; the findings are the same with every engine.
    ``artefacts`` (an :class:`~dataaudit.artefacts.ArtefactCache`) keeps the kNN graphs and the
    clustering on disk, so a re-run of the same data and settings skips them.
    ``eval_sets`` (datasets or paths) are benchmark test sets the contamination check looks for.

    ``config`` (an :class:`~dataaudit.config.AuditConfig`, its tables as a dict, a TOML file or
    an earlier ``summary.json``) configures every component the call does not pass itself;
    ``checks`` (default: the config's, else every available check), ``seed`` (0) and ``knn_k``
    (30) likewise. ``summary["config"]`` records the whole effective configuration.
    ``baseline`` (an earlier audit or its directory) compares the findings with it:
    ``summary["baseline"]`` counts new, unchanged and resolved findings, and
    :meth:`AuditResult.gate_findings` returns only the new ones.
    ``checks`` defaults to :func:`~dataaudit.checks.default_checks` (every available check; the
    language-model checks join where a GPU is present).
    """
    from dataaudit.config import as_config, effective_config
    from dataaudit.engine import make_engine
    from dataaudit.resources import check_audit_memory, check_input_memory

    started = time.perf_counter()
    config = as_config(config)
    baseline_path, baseline = _baseline(baseline)  # a bad baseline fails now, not after the audit
    settings = config.settings
    seed = settings.seed if seed is None else seed
    knn_k = settings.knn_k if knn_k is None else knn_k
    engine = make_engine(engine)
    embedder = embedder if embedder is not None else default_embedder(embedder=config.embedder())
    if isinstance(dataset, (str, os.PathLike)):
        # Before the read: an audit that cannot fit fails in seconds, not after the whole parse.
        check_input_memory(dataset, production=production, embedder=embedder, embeddings=embeddings, knn_k=knn_k)
    configured = make_checks(checks) if checks is not None else config.make_checks()
    if isinstance(eval_sets, (str, os.PathLike, Dataset)):
        eval_sets = [eval_sets]
    _check_eval_sets(eval_sets, configured)  # before any file is read
    skipping = LoadOptions(skip_bad_lines=True)
    if not isinstance(dataset, Dataset):
        dataset = engine.load(dataset, skipping)
    if production is not None and not isinstance(production, Dataset):
        production = engine.load(production, skipping)
    eval_sets = tuple(item if isinstance(item, Dataset) else engine.load(item, skipping) for item in eval_sets)
    check_audit_memory(dataset, production=production, embedder=embedder, embeddings=embeddings, knn_k=knn_k)
    cluster_pipeline = cluster_pipeline if cluster_pipeline is not None else config.cluster_pipeline()
    pipeline = with_seed(cluster_pipeline, seed)
    ctx = AuditContext(
        dataset=dataset,
        embedder=embedder,
        cluster_pipeline=pipeline,
        knn_k=knn_k,
        seed=seed,
        embeddings=embeddings,
        progress=progress,
        engine=engine,
        artefacts=artefacts,
        eval_sets=eval_sets,
    )
    check_summaries: dict[str, Any] = {}
    # Each check's own set-up (a tokenizer to load, eval sets to read) before the first embedding.
    check_list = _prepared([with_seed(check, seed) for check in configured], ctx, check_summaries)

    clustering = ctx.clustering
    rows = _base_rows(dataset, clustering)
    clusters = clustering.clusters
    findings_parts = []
    for check in check_list:
        try:
            ctx.require(sorted(check.needs))
            with ctx.stage(f"check_{check.name}"):
                result = check.run(ctx)
        except Exception as error:  # a broken check must not sink the audit
            logger.exception("check %s failed", check.name)
            check_summaries[check.name] = _failed(check, error)
            continue
        rows = rows.join(result.rows, on="row", how="left")
        if result.clusters.width > 1:
            clusters = clusters.join(result.clusters, on="cluster", how="left")
        findings_parts.append(result.findings)
        check_summaries[check.name] = {"status": "ok", "params": json_safe(check.get_params()), **json_safe(result.summary)}

    findings = _assemble_findings(findings_parts, rows)
    coverage_result = None
    coverage = coverage if coverage is not None else config.coverage()
    if production is not None:
        analysis = with_seed(coverage, seed)
        with ctx.stage("coverage"):
            coverage_result = analysis.run(ctx, production)

    summary = _summary(dataset, production, ctx, clustering, check_summaries, findings, started)
    summary["config"] = effective_config(checks=configured, cluster_pipeline=cluster_pipeline, coverage=coverage,
                                         embedder=embedder, seed=seed, knn_k=knn_k,
                                         finetune=config.tables.get("finetune"), check_tables=config.tables.get("checks"))
    result = AuditResult(rows=rows, findings=findings, clusters=clusters, summary=summary)
    if coverage_result is not None:
        result.coverage = coverage_result.coverage
        result.gaps = coverage_result.gaps
        result.cluster_coverage = coverage_result.cluster_coverage
        summary["coverage"] = json_safe(coverage_result.summary)
    if baseline is not None:
        from dataaudit.baseline import compare

        result.baseline = compare(result, baseline, path=baseline_path)
        summary["baseline"] = result.baseline.summary()
    summary["timings"]["total"] = round(time.perf_counter() - started, 3)
    return result


def _check_eval_sets(eval_sets: Sequence[Any], checks: Sequence[Check]) -> None:
    """Refuse eval sets that no selected check reads.

    A contamination scan the user asked for must not be skipped in silence (``--eval`` with
    ``--checks`` that leave contamination out).
    """
    if len(eval_sets) and not any(check.reads_eval_sets for check in checks):
        readers = sorted(name for name, cls in available_checks().items() if cls.reads_eval_sets)
        raise UsageError(f"eval sets were given but no selected check reads them; add {', '.join(readers) or 'a check that does'} "
                         "to the checks or drop the eval sets")


def _baseline(baseline: "AuditResult | str | os.PathLike | None") -> "tuple[str | None, AuditResult | None]":
    """The baseline audit and where it came from, read before the audit runs."""
    if baseline is None or isinstance(baseline, AuditResult):
        return None, baseline
    return str(baseline), AuditResult.load(baseline)


def _prepared(checks: list[Check], ctx: AuditContext, summaries: dict[str, Any]) -> list[Check]:
    """Keep the checks whose ``prepare`` passed.

    A usage error stops the audit here, before the costly part; any other error fails that check
    alone, as if its ``run`` had raised.
    """
    ready = []
    for check in checks:
        try:
            check.prepare(ctx)
        except DataAuditError:
            raise
        except Exception as error:
            logger.exception("check %s failed while preparing", check.name)
            summaries[check.name] = _failed(check, error)
            continue
        ready.append(check)
    return ready


def _failed(check: Check, error: Exception) -> dict[str, Any]:
    return {"status": "failed", "error": f"{type(error).__name__}: {error}", "params": json_safe(check.get_params())}


def _base_rows(dataset: Dataset, clustering) -> pl.DataFrame:
    frame = dataset.frame
    return pl.DataFrame(
        {
            "row": frame.get_column("row"),
            "line": frame.get_column("line"),
            "prompt": frame.get_column("prompt"),
            "response": frame.get_column("response"),
            "label": frame.get_column("label"),
            "cluster": pl.Series(clustering.labels, dtype=pl.Int64),
            "nearest_cluster": pl.Series(clustering.nearest_cluster, dtype=pl.Int64),
            "x": pl.Series(clustering.xy[:, 0], dtype=pl.Float32),
            "y": pl.Series(clustering.xy[:, 1], dtype=pl.Float32),
            # Provenance for data read from several files (shards); one file's rows need none.
            **({"source_file": dataset.source_files()} if dataset.is_sharded else {}),
        }
    )


def _assemble_findings(parts: list[pl.DataFrame], rows: pl.DataFrame) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    findings = pl.concat(parts, how="vertical")
    own_cluster = rows.select("row", pl.col("cluster").alias("_own_cluster"))
    findings = findings.join(own_cluster, on="row", how="left").with_columns(
        pl.coalesce("cluster", "_own_cluster").alias("cluster")
    ).drop("_own_cluster")
    return findings.sort([pl.col("check"), rank_expr(), pl.col("score"), pl.col("row")]).select(list(FINDING_SCHEMA))


def _summary(dataset, production, ctx, clustering, check_summaries, findings, started) -> AuditSummary:
    by_check = {name: 0 for name in check_summaries}
    for name, count in findings.group_by("check").len().iter_rows():
        by_check[name] = count
    by_severity = {severity: 0 for severity in SEVERITIES}
    for severity, count in findings.group_by("severity").len().iter_rows():
        by_severity[severity] = count
    labels = clustering.labels
    flagged_rows = findings.get_column("row").n_unique() if findings.height else 0
    return {
        "schema_version": SCHEMA_VERSION,
        "dataaudit_version": __version__,
        "dataset": {
            "path": dataset.path,
            "format": dataset.format,
            "fingerprint": dataset.fingerprint(),
            "records": len(dataset),
            "bad_lines": len(dataset.bad_lines),
            "blank_lines": len(dataset.blank_lines),
            "has_labels": dataset.has_labels,
            "has_responses": dataset.has_responses,
        },
        "production": None if production is None else {"path": production.path, "format": production.format, "records": len(production)},
        "embedder": getattr(ctx.embedder, "model_id", type(ctx.embedder).__name__),
        "parameters": {"seed": ctx.seed, "knn_k": ctx.knn_k, "engine": ctx.engine.name, "clustering": json_safe(clustering.params)},
        "clusters": {
            "count": int(clustering.clusters.height),
            "noise_rows": int((labels == -1).sum()),
            "noise_share": round(float((labels == -1).mean()), 4) if labels.size else 0.0,
        },
        "checks": check_summaries,
        "issues_by_check": by_check,
        "issues_by_severity": by_severity,
        "flagged_rows": int(flagged_rows),
        "timings": dict(ctx.timings),
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for package in ("polars", "numpy", "scikit-learn", "umap-learn", "hdbscan", "sentence-transformers", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
