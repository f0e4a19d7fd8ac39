"""The audit summary's shape: typed, versioned, and plain JSON on disk.

``summary.json`` is a contract other tools read, so its shape is written down here once as
TypedDicts (a summary stays a plain ``dict`` at run time and on disk). The renderer and the
CLI read these keys instead of defending against an untyped nested dict. Bump
:data:`SCHEMA_VERSION` when a key changes meaning or goes away; adding keys is compatible.
"""

from __future__ import annotations

from typing import Any, TypedDict

#: Version of the ``summary.json`` layout (1: before ``schema_version`` was written).
SCHEMA_VERSION = 2


class DatasetInfo(TypedDict):
    path: str | None
    format: str
    fingerprint: str
    records: int
    bad_lines: int
    blank_lines: int
    has_labels: bool
    has_responses: bool


class ProductionInfo(TypedDict):
    path: str | None
    format: str
    records: int


class Parameters(TypedDict):
    seed: int
    knn_k: int
    engine: str
    clustering: dict[str, Any]


class ClusterInfo(TypedDict):
    count: int
    noise_rows: int
    noise_share: float


class CheckSummary(TypedDict, total=False):
    """One check's entry: ``status`` "ok" or "failed", its ``params``, and its own counts."""

    status: str
    error: str
    params: dict[str, Any]
    flagged: int
    by_severity: dict[str, int]


class AuditSummary(TypedDict, total=False):
    schema_version: int
    dataaudit_version: str
    dataset: DatasetInfo
    production: ProductionInfo | None
    embedder: str
    parameters: Parameters
    clusters: ClusterInfo
    checks: dict[str, CheckSummary]
    issues_by_check: dict[str, int]
    issues_by_severity: dict[str, int]
    flagged_rows: int
    timings: dict[str, float]
    versions: dict[str, str]
    coverage: dict[str, Any]
    finetune: dict[str, Any]
    #: With ``--baseline``: counts of new, unchanged and resolved findings (see dataaudit.baseline).
    baseline: dict[str, Any]
    #: The effective configuration, one table per component (see dataaudit.config): ``--config`` reads it back.
    config: dict[str, Any]
    #: Where the CLI wrote the HTML report.
    report_path: str
