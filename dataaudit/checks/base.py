"""The check plug-in contract, the registry, and the shared result shape.

A check is one class in its own module, registered by name. It declares the shared
artefacts it needs (``needs``), takes keyword-only parameters (its signature is its
config schema), and returns a :class:`CheckResult`:

- ``rows``: one row per dataset row: ``row``, ``<name>_score`` (float in [0, 1], lower =
  more likely an issue), ``is_<name>_issue`` (bool) and optionally more ``<name>_*`` columns;
- ``findings``: one row per flagged row with :data:`FINDING_COLUMNS`: a machine ``kind``
  (a short code such as ``near`` or ``label_noise``) and ``suggested_value`` (the fix a
  program can apply, such as the suggested label, or null) beside the ``reason`` and
  ``suggestion`` written for people. Code downstream reads the data fields, never the prose;
- ``clusters``: optional per-cluster columns (``cluster`` plus ``<name>_*`` or named
  metrics such as ``format_consistency``);
- ``summary``: JSON-safe counts and parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np
import polars as pl

from dataaudit.params import Component
from dataaudit.severity import SEVERITIES, SEVERITY_RANK, Severity

if TYPE_CHECKING:
    from dataaudit.context import AuditContext
    from dataaudit.result import AuditResult

__all__ = [
    "FINDING_COLUMNS", "FINDING_SCHEMA", "REGISTRY", "SEVERITIES", "SEVERITY_RANK", "Check", "CheckResult", "Finding",
    "Kind", "ReportSection", "Severity", "empty_findings", "findings_frame", "register_check", "result_from_findings", "row_frame",
]

FINDING_SCHEMA = {
    "row": pl.Int64,
    "check": pl.String,
    "kind": pl.String,
    "score": pl.Float64,
    "severity": pl.String,
    "cluster": pl.Int64,
    "group": pl.Int64,
    "reason": pl.String,
    "suggestion": pl.String,
    "suggested_value": pl.String,
}
FINDING_COLUMNS = tuple(FINDING_SCHEMA)


@dataclass(frozen=True)
class Finding:
    """One flagged row. ``kind`` and ``suggested_value`` are for programs, the rest for people."""

    row: int
    score: float
    severity: str
    reason: str
    suggestion: str | None = None
    #: Short machine code; empty takes the check's name, so plug-ins written before kinds still work.
    kind: str = ""
    suggested_value: str | None = None
    group: int | None = None
    cluster: int | None = None


@dataclass(frozen=True)
class Kind:
    """A finding kind's metadata, declared once in its check's ``kinds``.

    ``severity``, ``score`` and ``suggestion`` are what its findings get by default (a check
    may grade a finding more finely); the flags say what programs may do with it: ``relabel``
    — ``export --relabel`` may write the finding's ``suggested_value`` into the row's label;
    ``target`` — the finding says the row's target (label or response) is wrong, which the
    reference fine-tune's training dynamics can confirm or refute.
    """

    severity: str = "warning"
    score: float = 0.5
    suggestion: str = ""
    relabel: bool = False
    target: bool = False


@dataclass
class CheckResult:
    """What one check returns: per-row scores and flags, findings, a summary and per-cluster figures.

    The runner joins ``rows`` (``row``, ``<name>_score``, ``is_<name>_issue``, ``<name>_*``) into
    the audit's row table and ``findings`` into its findings; :func:`result_from_findings` builds
    one consistently from a list of :class:`Finding`.
    """

    name: str
    rows: pl.DataFrame
    findings: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    clusters: pl.DataFrame = field(default_factory=lambda: pl.DataFrame({"cluster": pl.Series([], dtype=pl.Int64)}))


def empty_findings() -> pl.DataFrame:
    """Return a findings frame with no rows but the full finding schema, so frames always concatenate."""
    return pl.DataFrame(schema=FINDING_SCHEMA)


def findings_frame(check: str, findings: Sequence[Finding]) -> pl.DataFrame:
    """Build ``check``'s findings frame; a finding without a ``kind`` takes the check's name.

    Raises ValueError on an unknown severity, so a typo cannot slip past the severity gates.
    """
    if not findings:
        return empty_findings()
    for finding in findings:
        if finding.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {finding.severity!r}")
    return pl.DataFrame(
        {
            "row": [f.row for f in findings],
            "check": [check] * len(findings),
            "kind": [f.kind or check for f in findings],
            "score": [float(f.score) for f in findings],
            "severity": [f.severity for f in findings],
            "cluster": [f.cluster for f in findings],
            "group": [f.group for f in findings],
            "reason": [f.reason for f in findings],
            "suggestion": [f.suggestion for f in findings],
            "suggested_value": [f.suggested_value for f in findings],
        },
        schema=FINDING_SCHEMA,
    )


def row_frame(name: str, rows: Sequence[int] | np.ndarray, scores: np.ndarray, flags: np.ndarray, **extra: Any) -> pl.DataFrame:
    """The per-row frame of a check, with scores clipped into [0, 1]."""
    columns: dict[str, Any] = {
        "row": pl.Series(np.asarray(rows, dtype=np.int64)),
        f"{name}_score": pl.Series(np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)),
        f"is_{name}_issue": pl.Series(np.asarray(flags, dtype=bool)),
    }
    for key, values in extra.items():
        columns[f"{name}_{key}"] = values if isinstance(values, pl.Series) else pl.Series(values)
    return pl.DataFrame(columns)


def group_column(group_of: np.ndarray) -> pl.Series:
    """Per-row group ids as a nullable Int64 column: ``-1`` (no group) becomes null."""
    return pl.Series("group", [int(g) if g >= 0 else None for g in group_of], dtype=pl.Int64)


def result_from_findings(name: str, ctx: "AuditContext", findings: Sequence[Finding], *, summary: dict | None = None,
                         clusters: pl.DataFrame | None = None, **extra: Any) -> CheckResult:
    """Assemble a CheckResult where each flagged row's score is the lowest among its findings."""
    rows = ctx.dataset.frame.get_column("row").to_numpy()
    position = {int(row): index for index, row in enumerate(rows)}
    scores = np.ones(len(rows), dtype=np.float64)
    flags = np.zeros(len(rows), dtype=bool)
    for finding in findings:
        index = position[finding.row]
        scores[index] = min(scores[index], finding.score)
        flags[index] = True
    counts = {severity: sum(1 for f in findings if f.severity == severity) for severity in SEVERITIES}
    base_summary = {"flagged": int(flags.sum()), "by_severity": counts}
    return CheckResult(
        name=name,
        rows=row_frame(name, rows, scores, flags, **extra),
        findings=findings_frame(name, findings),
        summary={**base_summary, **(summary or {})},
        clusters=clusters if clusters is not None else CheckResult.__dataclass_fields__["clusters"].default_factory(),
    )


@dataclass(frozen=True)
class ReportSection:
    """Extra evidence a check shows in its report section: a Jinja2 template and its data.

    The check hands over data only; the markup (and any geometry) lives in a template file:
    ``template_name`` names one of the report's templates (the built-ins' are
    ``dataaudit/report/templates/checks/<name>.html.j2``), and a plug-in ships its own and
    loads it with :meth:`from_package` (``template`` holds template source). Rendered with
    autoescaping on, in the report's environment, so it can use the report's macros
    (``{% import "macros.html.j2" as m %}``) and never needs ``escape()``.
    """

    template: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    template_name: str | None = None

    @classmethod
    def from_package(cls, package: str, resource: str, context: dict[str, Any]) -> "ReportSection":
        """A section whose template is the file ``resource`` shipped inside ``package``."""
        from importlib.resources import files

        return cls(template=files(package).joinpath(resource).read_text(encoding="utf-8"), context=context)


class Check(Component, ABC):
    """Base class of every check.

    Subclasses set ``name``, ``description`` and ``needs``, and implement ``run``; the report gives
    each registered check a section from this metadata.
    """

    name: ClassVar[str]
    #: One sentence for people: what the check flags and why it matters (shown in the report).
    description: ClassVar[str] = ""
    #: The machine codes this check's findings use in ``kind``: ``{code: Kind(...)}`` with each
    #: kind's metadata, or (the older form, still read) a tuple of codes with default metadata.
    kinds: ClassVar[Mapping[str, Kind] | tuple[str, ...]] = ()
    #: Artefacts from the context: "clustering", "knn_prompt", "embeddings_response", ...
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Whether the check reads ``ctx.eval_sets``: eval sets given to an audit none of whose checks
    #: reads them are a usage error, not silently ignored.
    reads_eval_sets: ClassVar[bool] = False

    def prepare(self, ctx: "AuditContext") -> None:
        """Check this configuration against the audit's inputs before anything is embedded.

        The runner calls it for every check before the context computes embeddings, kNN graphs
        or the clustering, so a configuration that cannot work (a tokenizer that does not load,
        an eval set with nothing to look for) stops the audit in seconds with a
        :class:`~dataaudit.errors.UsageError` (CLI exit 2), not minutes later as a failed check.
        Read only what is already there (``ctx.dataset``, ``ctx.eval_sets``), never the costly
        artefacts. What it loads for ``run`` it may keep in attributes ending in ``_``; ``run``
        must still work unprepared. Any other exception fails this check alone, like one raised
        by ``run``. The default does nothing.
        """

    @abstractmethod
    def run(self, ctx: "AuditContext") -> CheckResult:
        """Judge every row of ``ctx.dataset`` and return the check's result.

        Take the artefacts declared in ``needs`` from ``ctx`` (computed once, shared by all
        checks); per-row work that is independent row by row goes through ``ctx.map_frame`` so
        the engine may spread it. The result must keep the contract
        :func:`dataaudit.testing.check_contract` tests.
        """

    @classmethod
    def kind_specs(cls) -> dict[str, Kind]:
        """``{code: Kind}`` for this check's kinds, whichever form ``kinds`` was declared in."""
        if isinstance(cls.kinds, Mapping):
            return dict(cls.kinds)
        return {code: Kind() for code in cls.kinds}

    @classmethod
    def report_section(cls, result: "AuditResult") -> ReportSection | None:
        """Optional extra evidence for the report; the findings table is always shown."""
        return None


REGISTRY: dict[str, type[Check]] = {}


def register_check(cls: type[Check]) -> type[Check]:
    """Add ``cls`` to the registry under its ``name`` (a class decorator).

    The registry is the single source of check names: the CLI, the configuration file, the
    report and the docs site all list what it holds. Registering another class under a taken
    name is an error; registering the same class again is not.
    """
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"a check named {cls.name!r} is already registered ({REGISTRY[cls.name].__name__})")
    REGISTRY[cls.name] = cls
    return cls
