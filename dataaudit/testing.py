"""Contract tests for checks: what every registered check must do, runnable by plug-in authors.

``check_contract(MyCheck)`` runs a check on small real datasets (one row, all rows identical,
empty responses, labelled and unlabelled, multi-turn chats, odd unicode) through a real audit
context (the hashing embedder and the real cluster pipeline, which keeps data this small in
one cluster) and raises an AssertionError listing every broken promise:

- the per-row frame has one row per dataset row, ``<name>_score`` in [0, 1] (no NaN),
  ``is_<name>_issue`` booleans, and only ``<name>_*`` columns besides;
- findings have exactly the finding schema, name rows of the dataset, carry a ``kind`` (one
  of the class's declared ``kinds`` when it declares any) and a valid severity, and the
  flagged rows are exactly the rows with findings;
- the summary is JSON-safe; two runs give identical frames (determinism);
- the parameters round-trip: ``type(check)(**check.get_params())`` has the same ``repr``, and
  every parameter declares its constraints in ``_parameter_constraints`` (the configuration
  file is validated by them).

Our own test suite runs it over the whole registry, so a new check cannot skip it.
:class:`FixedClusterPipeline` stands in for the clustering where a test (or a bench) says which
row is in which cluster.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

from dataaudit.checks.base import FINDING_SCHEMA, Check, CheckResult
from dataaudit.progress import NULL_PROGRESS
from dataaudit.severity import SEVERITIES

#: Small datasets every check must survive, as records in the formats users bring.
CONTRACT_DATASETS: dict[str, list[dict[str, Any]]] = {
    "one_row": [{"prompt": "What is the capital of France?", "completion": "Paris."}],
    "identical": [{"prompt": "Say hi.", "completion": "Hi!"}] * 6,
    "empty_responses": [{"prompt": f"Question {i}: explain item {i}.", "completion": "" if i % 2 else f"Item {i}."}
                        for i in range(8)],
    "labelled": [{"text": f"my card {word} problem number {i}", "label": label}
                 for i, (word, label) in enumerate([("arrived", "card arrival"), ("lost", "lost card"),
                                                    ("arrived", "card arrival"), ("lost", "lost card"),
                                                    ("late", "card arrival"), ("stolen", "lost card"),
                                                    ("arrived", "lost card"), ("missing", "lost card")])],
    "chats": [{"messages": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": f"Translate word {i} into French."},
                            {"role": "assistant", "content": f"Mot {i}."},
                            {"role": "user", "content": "And into German?"},
                            {"role": "assistant", "content": f"Wort {i}."}]} for i in range(6)],
    "unicode": [{"prompt": "Ünïcödé 🙂 " * (i + 1), "completion": "Ответ: 42 ✓ " + "x" * (50 * i)} for i in range(5)],
}


def check_contract(check: "type[Check] | Check", *, datasets: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                   make_context: "Callable[[Any], Any] | None" = None) -> None:
    """Run ``check`` on small datasets and raise an AssertionError naming every contract violation.

    ``check`` is a class (built with its defaults) or an instance.
    """
    instance = check() if isinstance(check, type) else check
    problems = _param_problems(instance)
    for name, records in (datasets or CONTRACT_DATASETS).items():
        from dataaudit.io.load import from_records

        dataset = from_records(list(records))
        build = make_context or _context
        try:
            first = _run(instance, build(dataset))
            second = _run(instance, build(dataset))
        except Exception as error:  # noqa: BLE001 - any exception is a contract violation here
            problems.append(f"{name}: raised {type(error).__name__}: {error}")
            continue
        problems += [f"{name}: {problem}" for problem in _result_problems(instance, dataset, first)]
        if not (first.rows.equals(second.rows) and first.findings.equals(second.findings)):
            problems.append(f"{name}: two runs on the same data differ (not deterministic)")
    if problems:
        raise AssertionError(f"{type(instance).__name__} breaks the check contract:\n- " + "\n- ".join(problems))


def _context(dataset: Any) -> Any:
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.context import AuditContext
    from dataaudit.embed.base import HashingEmbedder
    from dataaudit.engine.local import LocalEngine

    # Data this small is one cluster: no UMAP, still the real pipeline.
    return AuditContext(engine=LocalEngine(), dataset=dataset, embedder=HashingEmbedder(dim=64), knn_k=5, seed=0,
                        cluster_pipeline=ClusterPipeline(min_cluster_size=50, stability_resamples=1, seed=0))


def _run(check: Check, ctx: Any) -> CheckResult:
    check.prepare(ctx)  # as the runner does, before the artefacts
    ctx.require(sorted(check.needs))
    return check.run(ctx)


def _param_problems(check: Check) -> list[str]:
    from dataaudit.params import missing_constraints

    problems = []
    unconstrained = missing_constraints(type(check))
    if unconstrained:
        problems.append(f"parameters without a declared constraint in _parameter_constraints: {', '.join(unconstrained)}")
    try:
        rebuilt = type(check)(**check.get_params())
    except Exception as error:  # noqa: BLE001
        return [*problems, f"cannot be rebuilt from get_params(): {type(error).__name__}: {error}"]
    if repr(rebuilt) != repr(check):
        problems.append(f"get_params() does not round-trip: {rebuilt!r} != {check!r}")
    return problems


def _result_problems(check: Check, dataset: Any, result: CheckResult) -> list[str]:
    import numpy as np

    from dataaudit.jsonsafe import json_safe

    name = check.name
    problems = []
    if result.name != name:
        problems.append(f"result.name is {result.name!r}, expected {name!r}")
    rows = result.rows
    expected_rows = dataset.frame.get_column("row").to_list()
    if "row" not in rows.columns or rows.get_column("row").to_list() != expected_rows:
        problems.append("rows frame does not have exactly one row per dataset row, in order")
    score, flag = f"{name}_score", f"is_{name}_issue"
    for column in (score, flag):
        if column not in rows.columns:
            problems.append(f"rows frame lacks {column!r}")
    foreign = [c for c in rows.columns if c not in ("row", flag) and not c.startswith(f"{name}_")]
    if foreign:
        problems.append(f"rows frame has columns outside the check's namespace: {foreign}")
    if score in rows.columns:
        values = rows.get_column(score).cast(float).to_numpy()
        if np.isnan(values).any() or (values < 0).any() or (values > 1).any():
            problems.append(f"{score} is outside [0, 1] or NaN")
    findings = result.findings
    if dict(findings.schema) != FINDING_SCHEMA:
        problems.append(f"findings schema {dict(findings.schema)} is not FINDING_SCHEMA")
        return problems
    if findings.height:
        if set(findings.get_column("check").to_list()) != {name}:
            problems.append("findings name another check")
        if not set(findings.get_column("row").to_list()) <= set(expected_rows):
            problems.append("findings name rows that are not in the dataset")
        kinds = findings.get_column("kind").to_list()
        if any(not kind for kind in kinds):
            problems.append("a finding has no kind")
        if check.kinds and not set(kinds) <= set(check.kinds):
            problems.append(f"finding kinds {sorted(set(kinds) - set(check.kinds))} are not among the declared kinds")
        if not set(findings.get_column("severity").to_list()) <= set(SEVERITIES):
            problems.append("a finding has an unknown severity")
    if flag in rows.columns:
        flagged = set(rows.filter(rows.get_column(flag)).get_column("row").to_list())
        if flagged != set(findings.get_column("row").to_list()):
            problems.append(f"{flag} is not true exactly on the rows with findings")
    try:
        json.dumps(json_safe(result.summary), allow_nan=False)
    except (TypeError, ValueError) as error:
        problems.append(f"summary is not JSON-safe: {error}")
    return problems


__all__ = ["CONTRACT_DATASETS", "FixedClusterPipeline", "check_contract"]


class FixedClusterPipeline:
    """Test double for ClusterPipeline: the test says which row is in which cluster."""

    def __init__(self, *, labels: Sequence[int] | None = None):
        self.labels = labels

    def get_params(self):
        """The labels, as a list: the pipeline's parameters are part of the audit's cache keys."""
        return {"labels": None if self.labels is None else list(self.labels)}

    def fit(self, embeddings, texts, *, knn=None, progress=NULL_PROGRESS):
        """Return a clustering with the given labels (all rows in cluster 0 when none were given)."""
        import numpy as np
        import polars as pl

        from dataaudit.cluster.pipeline import Clustering

        n = len(texts)
        labels = np.asarray(self.labels if self.labels is not None else np.zeros(n), dtype=np.int64)
        ids = sorted(int(c) for c in set(labels.tolist()) if c >= 0)
        nearest = labels.copy()
        if ids:
            nearest[nearest < 0] = ids[0]
        clusters = pl.DataFrame(
            {
                "cluster": pl.Series(ids, dtype=pl.Int64),
                "size": pl.Series([int((labels == c).sum()) for c in ids], dtype=pl.Int64),
                "label": [f"cluster_{c}" for c in ids],
                "keywords": pl.Series([[] for _ in ids], dtype=pl.List(pl.String)),
                "representatives": pl.Series([np.flatnonzero(labels == c)[:5].tolist() for c in ids], dtype=pl.List(pl.Int64)),
                "stability": pl.Series([1.0] * len(ids), dtype=pl.Float64),
            }
        )
        xy = np.zeros((n, 2), dtype=np.float32)
        return Clustering(labels=labels, nearest_cluster=nearest, xy=xy, clusters=clusters, params={"fixed": True})
