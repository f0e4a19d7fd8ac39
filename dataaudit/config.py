"""One configuration for the CLI and the API: a TOML file with one table per component.

```
[audit]              seed, knn_k, checks (the checks that run, in order)
[embed]              name (a registered embedder) and its parameters
[cluster]            the cluster pipeline; [cluster.reducer] / .clusterer / .mapper: name and parameters
[checks.<name>]      one table per check
[coverage]           the coverage analysis (runs with a production sample)
[finetune]           the reference fine-tune; [finetune.encoder] / [finetune.causal-lm]: its backends
```

Every key is a constructor parameter read back by ``get_params``, and every value is checked
against the component's declared ``_parameter_constraints`` when the file is read, so a typo
fails in a second with the file, the table, the key and what is allowed, never mid-run. The
same data is recorded as ``summary.json``'s ``config``, which ``--config`` accepts too: a
previous audit reruns exactly. TOML has no null, so a parameter left at ``None`` (derived at
run time) is written as a comment.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from dataaudit.errors import UsageError
from dataaudit.params import Component, Interval, Satisfies, parameter_constraints, parameter_names, value_problem

if TYPE_CHECKING:
    from dataaudit.checks.base import Check
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.coverage import CoverageAnalysis

__all__ = ["AuditConfig", "AuditSettings", "as_config", "default_config", "effective_config", "read_config", "to_toml"]

#: Tables that pick their class by ``name`` from a registry (in dataaudit.registry), and the default.
_NAMED = {"embed": ("EMBEDDERS", "sentence-transformers"), "cluster.reducer": ("REDUCERS", "umap"),
          "cluster.clusterer": ("CLUSTERERS", "hdbscan"), "cluster.mapper": ("MAPPERS", "umap")}
_CLUSTER_STAGES = ("reducer", "clusterer", "mapper")
#: Fine-tune parameters that default to the backend's budget for its device (left out = budget).
BUDGET_KEYS = ("epochs", "max_examples", "max_production", "max_perturbed", "max_few_shot", "few_shot_k",
               "max_generations")


class AuditSettings(Component):
    """The ``[audit]`` table: what is not any one component's (the seed, the kNN width, which checks run)."""

    _parameter_constraints = {
        "seed": [Interval(int, 0, None)],
        "knn_k": [Interval(int, 1, None)],
        "checks": [Satisfies(lambda names: isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names),
                             "a list of check names"), None],
    }

    def __init__(self, *, seed: int = 0, knn_k: int = 30, checks: tuple[str, ...] | None = None):
        self.seed = seed
        self.knn_k = knn_k
        self.checks = checks


def _registry(name: str):
    import dataaudit.registry

    return getattr(dataaudit.registry, name)


def _table_class(path: str, table: Mapping[str, Any]) -> type:
    """The component class a table configures (``path`` is ``"checks.duplicate"``, ``"embed"`` …)."""
    if path in _NAMED:
        registry, default = _NAMED[path]
        return _registry(registry).load(table.get("name", default))
    if path == "audit":
        return AuditSettings
    if path == "cluster":
        from dataaudit.cluster.pipeline import ClusterPipeline

        return ClusterPipeline
    if path == "coverage":
        from dataaudit.coverage import CoverageAnalysis

        return CoverageAnalysis
    if path == "finetune":
        from dataaudit.finetune.engine import ReferenceFineTune

        return ReferenceFineTune
    if path.startswith("finetune."):
        return _registry("BACKENDS").load(path.partition(".")[2])
    if path.startswith("checks."):
        from dataaudit.checks import available_checks

        checks = available_checks()
        name = path.partition(".")[2]
        if name not in checks:
            raise UsageError(f"unknown check {name!r}; available: {', '.join(checks)}")
        return checks[name]
    raise UsageError(f"unknown table [{path}]")


def _coerce(cls: type, key: str, value: Any) -> Any:
    """TOML and JSON spellings of Python values: ``1`` for a float parameter, arrays for tuples."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, int) and not isinstance(value, bool):
        wants_float = any(c is float or (isinstance(c, Interval) and c.kind is float)
                          for c in parameter_constraints(cls).get(key, []))
        wants_int = any(c is int or (isinstance(c, Interval) and c.kind is int) for c in parameter_constraints(cls).get(key, []))
        if wants_float and not wants_int:
            return float(value)
    return value


def _validate_table(source: str, path: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The table's values coerced and checked; nested tables are validated by the caller."""
    custom = table.get("name")
    if isinstance(custom, str) and custom.startswith("<"):
        raise UsageError(f"{source}: [{path}] records a {custom[1:-1]} built in Python, which a file cannot recreate; "
                         "pass it to audit() again, or replace the table with a built-in one")
    try:
        cls = _table_class(path, table)
    except UsageError as error:
        raise UsageError(f"{source}: [{path}] {error}") from None
    keys = parameter_names(cls)
    if path == "finetune":
        keys = [*(k for k in keys if k != "backend"), "backend"]
    named = path in _NAMED
    clean: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            continue
        if key == "name" and named:
            clean[key] = value
            continue
        if key not in keys:
            raise UsageError(f"{source}: [{path}] has no key {key!r}; keys: {', '.join(keys)}")
        value = _coerce(cls, key, value)
        if path == "finetune" and key == "backend":
            choices = ("auto", *_registry("BACKENDS").names())
            problem = None if value in choices else f"expected one of {', '.join(choices)}"
        elif path == "finetune" and key in BUDGET_KEYS and value is None:
            problem = None
        else:
            problem = value_problem(cls, key, value)
        if problem:
            raise UsageError(f"{source}: [{path}] {key} = {_toml_value(value)} is not allowed: {problem}")
        clean[key] = value
    return clean


def _validate(source: str, data: Mapping[str, Any]) -> dict[str, Any]:
    known = ("audit", "embed", "cluster", "checks", "coverage", "finetune")
    result: dict[str, Any] = {}
    for section, table in data.items():
        if section not in known:
            raise UsageError(f"{source}: unknown table [{section}]; tables: {', '.join(known)}")
        if not isinstance(table, Mapping):
            raise UsageError(f"{source}: {section} must be a table ([{section}]), not a value")
        if section == "checks":
            result["checks"] = {name: _validate_table(source, f"checks.{name}", params) for name, params in table.items()}
            continue
        result[section] = _validate_table(source, section, table)
        nested = _CLUSTER_STAGES if section == "cluster" else _registry("BACKENDS").names() if section == "finetune" else ()
        for key, value in table.items():
            if isinstance(value, Mapping):
                if key not in nested:
                    raise UsageError(f"{source}: unknown table [{section}.{key}]; tables: {', '.join(nested) or 'none'}")
                result[section][key] = _validate_table(source, f"{section}.{key}", value)
    cluster = result.get("cluster", {})
    sizes = (cluster.get("min_cluster_size"), cluster.get("clusterer", {}).get("min_cluster_size"))
    if None not in sizes and sizes[0] != sizes[1]:
        raise UsageError(f"{source}: [cluster] min_cluster_size = {sizes[0]} and [cluster.clusterer] min_cluster_size = "
                         f"{sizes[1]} disagree; set one of them")
    checks = result.get("audit", {}).get("checks")
    if checks is not None:
        _table_class_names = _check_names()
        unknown = [name for name in checks if name not in _table_class_names]
        if unknown:
            raise UsageError(f"{source}: [audit] checks names unknown checks {', '.join(unknown)}; "
                             f"available: {', '.join(_table_class_names)}")
    return result


def _check_names() -> list[str]:
    from dataaudit.checks import default_checks

    return list(default_checks())


@dataclass(frozen=True)
class AuditConfig:
    """A validated configuration: ``{table: {key: value}}`` as in the file; missing keys are defaults."""

    tables: dict[str, Any] = field(default_factory=dict)
    source: str = "<config>"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<config>") -> "AuditConfig":
        """Validate ``data`` (parsed TOML) as a configuration; ``source`` names it in errors."""
        return cls(tables=_validate(source, data), source=source)

    def table(self, path: str) -> dict[str, Any]:
        """One table (``"checks.length"``, ``"cluster.reducer"``), without its nested tables."""
        node: Any = self.tables
        for part in path.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return {key: value for key, value in node.items() if not isinstance(value, Mapping)}

    def override(self, path: str, source: str, **values: Any) -> "AuditConfig":
        """A copy with ``values`` set in table ``path`` (the CLI's explicit options win over the file)."""
        if not values:
            return self
        data = json.loads(json.dumps(self.tables, default=list))
        node = data
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.update(values)
        return AuditConfig(tables=_validate(source, data), source=self.source)

    # -- building the components ------------------------------------------------------------
    @property
    def settings(self) -> AuditSettings:
        """The ``[audit]`` table, typed."""
        return AuditSettings(**self.table("audit"))

    def check_names(self) -> list[str]:
        """The checks that run: ``[audit] checks``, else every available one (plug-ins included)."""
        chosen = self.settings.checks
        return list(chosen) if chosen is not None else _check_names()

    def make_checks(self) -> "list[Check]":
        """Build the checks that run, each with its ``[checks.<name>]`` table."""
        from dataaudit.checks import make_checks

        return make_checks({name: self.table(f"checks.{name}") for name in self.check_names()})

    def embedder(self) -> Any:
        """The configured embedder, not yet behind the vector cache."""
        params = self.table("embed")
        return _table_class("embed", params)(**{k: v for k, v in params.items() if k != "name"})

    def cluster_pipeline(self) -> "ClusterPipeline":
        """Build the cluster pipeline from ``[cluster]``, replacing or reconfiguring a stage per sub-table."""
        import dataaudit.cluster.pipeline

        pipeline = dataaudit.cluster.pipeline.ClusterPipeline(**self.table("cluster"))
        for stage in _CLUSTER_STAGES:
            params = self.table(f"cluster.{stage}")
            if not params:
                continue
            current = getattr(pipeline, stage)
            cls = _table_class(f"cluster.{stage}", {"name": params.get("name") or _stage_name(stage, current)})
            values = {k: v for k, v in params.items() if k != "name"}
            if type(current) is cls:
                current.set_params(**values)
            else:
                pipeline.set_params(**{stage: cls(**values)})
        return pipeline

    def coverage(self) -> "CoverageAnalysis":
        """Build the coverage analysis from ``[coverage]``."""
        from dataaudit.coverage import CoverageAnalysis

        return CoverageAnalysis(**self.table("coverage"))

    def effective(self) -> dict[str, Any]:
        """Every table with every key, defaults filled in: what ``dataaudit config`` prints."""
        settings = self.settings
        return effective_config(checks=self.make_checks(), cluster_pipeline=self.cluster_pipeline(),
                                coverage=self.coverage(), embedder=self.embedder(), seed=settings.seed,
                                knn_k=settings.knn_k, finetune=self.tables.get("finetune"),
                                check_tables=self.tables.get("checks"))


def _stage_name(stage: str, component: Any) -> str | None:
    return _registry(_NAMED[f"cluster.{stage}"][0]).name_of(component)


def _params(component: Any) -> dict[str, Any]:
    """A component's configurable parameters (``get_params`` limited to the constructor's)."""
    names = parameter_names(type(component))
    params = component.get_params() if hasattr(component, "get_params") else {}
    return {name: params[name] for name in names if name in params}


def _custom(component: Any) -> dict[str, Any]:
    """A component of the caller's own class: recorded by name, which reading back refuses clearly."""
    return {"name": f"<{type(component).__name__}>"}


def _named(registry: str, component: Any) -> dict[str, Any]:
    name = _registry(registry).name_of(component) or f"<{type(component).__name__}>"
    return {"name": name, **_params(component)}


def effective_config(*, checks: "Iterable[Check]", cluster_pipeline: Any, coverage: Any, embedder: Any, seed: int,
                     knn_k: int, finetune: Mapping[str, Any] | None = None,
                     check_tables: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Spell out the configuration these components amount to, defaults included.

    This is ``summary.json``'s ``config`` and the output of ``dataaudit config``. Checks that do
    not run keep a table too (``check_tables``' values over the defaults), so the file lists
    everything one could set.
    """
    from dataaudit.checks import available_checks
    from dataaudit.jsonsafe import json_safe

    checks = list(checks)
    inner = getattr(embedder, "embedder", embedder)  # the cache wrapper is not configuration
    cluster = _params(cluster_pipeline) if isinstance(cluster_pipeline, Component) else _custom(cluster_pipeline)
    for stage in _CLUSTER_STAGES:
        if stage in cluster:
            cluster[stage] = _named(_NAMED[f"cluster.{stage}"][0], getattr(cluster_pipeline, stage))
    configured = {check.name: _params(check) for check in checks}
    for name, cls in available_checks().items():
        if name not in configured:
            try:
                configured[name] = _params(cls(**dict((check_tables or {}).get(name, {}))))
            except Exception:  # noqa: BLE001 - a plug-in without defaults gets no table
                continue
    config = {
        "audit": {"seed": seed, "knn_k": knn_k, "checks": [check.name for check in checks]},
        "embed": _named("EMBEDDERS", inner),
        "cluster": cluster,
        "checks": configured,
        "coverage": _params(coverage) if isinstance(coverage, Component) else _custom(coverage),
        "finetune": _finetune_table(finetune or {}),
    }
    return json_safe(config)


def _finetune_table(given: Mapping[str, Any]) -> dict[str, Any]:
    from dataaudit.finetune.engine import ReferenceFineTune

    backends = _registry("BACKENDS")
    defaults = {name: parameter.default for name, parameter in _signature(ReferenceFineTune).items()
                if name != "backend"}
    table: dict[str, Any] = {"backend": "auto", **defaults, **{key: None for key in BUDGET_KEYS}}
    table.update({key: value for key, value in given.items() if not isinstance(value, Mapping)})
    for name in backends.names():
        table[name] = {**_params(backends.load(name)()), **dict(given.get(name, {}))}
    return table


def _signature(cls: type) -> dict[str, Any]:
    import inspect

    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items() if name in parameter_names(cls)}


def default_config() -> dict[str, Any]:
    """The effective configuration of an audit with every default."""
    return AuditConfig().effective()


def as_config(config: "AuditConfig | Mapping[str, Any] | str | os.PathLike | None") -> AuditConfig:
    """An :class:`AuditConfig` from itself, its tables as a dict, a file path, or None (the defaults)."""
    if config is None:
        return AuditConfig()
    if isinstance(config, AuditConfig):
        return config
    if isinstance(config, Mapping):
        return AuditConfig.from_dict(config)
    return read_config(config)


def read_config(path: str | os.PathLike) -> AuditConfig:
    """Read ``audit.toml``, or a previous audit's ``summary.json`` (its recorded ``config``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "summary.json"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read the configuration file {path}: {error.strerror or error}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}: not valid JSON ({error})") from None
        if "config" not in data or not isinstance(data["config"], Mapping):
            raise UsageError(f"{path} records no configuration (an audit summary from before dataaudit recorded one?)")
        return AuditConfig.from_dict(data["config"], source=str(path))
    toml = _toml_module()
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML ({error})") from None
    return AuditConfig.from_dict(data, source=str(path))


def _toml_module():
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise UsageError("reading a TOML configuration needs Python 3.11 or later (or `pip install tomli`); "
                             "a previous audit's summary.json works on any version") from None
    return tomllib


# -- writing TOML -------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if value is None:
        return "None"
    raise UsageError(f"{value!r} cannot be written to a TOML configuration")


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _write_table(lines: list[str], path: list[str], table: Mapping[str, Any]) -> None:
    lines.append(f"[{'.'.join(_toml_key(part) for part in path)}]")
    for key, value in table.items():
        if isinstance(value, Mapping):
            continue
        if value is None:
            lines.append(f"# {_toml_key(key)} =   # None")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    lines.append("")
    for key, value in table.items():
        if isinstance(value, Mapping):
            _write_table(lines, [*path, key], value)


def to_toml(config: Mapping[str, Any]) -> str:
    """``config`` as an editable TOML file (``dataaudit config``); ``read_config`` reads it back."""
    lines = ["# dataaudit configuration: one table per component; keys left out take their defaults.",
             "# A commented-out key is None: chosen at run time (see each component's documentation).",
             "# Use it with `dataaudit audit DATA --config FILE` (and `dataaudit finetune ... --config FILE`).", ""]
    for section, table in config.items():
        if section == "checks":
            for name, params in table.items():
                _write_table(lines, ["checks", name], params)
        else:
            _write_table(lines, [section], table)
    return "\n".join(lines).rstrip() + "\n"
