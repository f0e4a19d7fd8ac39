"""Registered checks. Each module defines one check and registers it by name.

Checks of other packages join through the ``dataaudit.checks`` entry-point group: a package
that declares ``[project.entry-points."dataaudit.checks"] mycheck = "mypkg.checks:MyCheck"``
appears in ``dataaudit checks``, ``--checks``, the configuration file and the report once it is
installed. Kind metadata (:class:`~dataaudit.checks.base.Kind`) is declared once, in each
check's ``kinds``; :func:`finding_kinds` reads it for every available check, plug-ins included.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Iterable, Mapping

from dataaudit.checks.base import REGISTRY, Check, CheckResult, Finding, Kind, register_check
from dataaudit.errors import UsageError

logger = logging.getLogger(__name__)

#: Built-in checks in the order they run and report (plug-ins follow, by name).
BUILTIN_CHECKS = ("duplicate", "conflict", "format", "quality", "outlier", "contamination", "turns", "tools", "reasoning",
                  "length", "template", "language")
#: The entry-point group third-party checks register under.
ENTRY_POINT_GROUP = "dataaudit.checks"
#: Entry points already loaded (``name=value``), and the ones that failed to load with their error.
_loaded_entry_points: set[str] = set()
PLUGIN_ERRORS: dict[str, str] = {}
#: Built-in checks that run a language model over every row: on by default only where an
#: accelerator is present (see :func:`default_checks`), opt-in by name on a CPU.
ACCELERATOR_CHECKS = ("learnability",)


def _import_builtins() -> None:
    for name in (*BUILTIN_CHECKS, *ACCELERATOR_CHECKS):
        importlib.import_module(f"dataaudit.checks.{name}")


def _load_plugins() -> None:
    """Import every check of the ``dataaudit.checks`` entry-point group not imported yet.

    Scanned on each call (cheap), so a package installed while the process runs is found; a
    plug-in that fails to import is logged and listed in :data:`PLUGIN_ERRORS`, never fatal.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        key = f"{entry.name}={entry.value}"
        if key in _loaded_entry_points:
            continue
        _loaded_entry_points.add(key)
        try:
            loaded = entry.load()
            if not (isinstance(loaded, type) and issubclass(loaded, Check)):
                raise TypeError(f"{entry.value} is not a Check subclass")
            if REGISTRY.get(loaded.name) is not loaded:
                register_check(loaded)
        except Exception as error:  # noqa: BLE001 - a broken plug-in must not break the tool
            PLUGIN_ERRORS[entry.name] = f"{type(error).__name__}: {error}"
            logger.warning("cannot load the check plug-in %s (%s): %s", entry.name, entry.value, error)


def default_checks() -> tuple[str, ...]:
    """Name the checks an audit runs when none are named.

    Every available check (plug-ins included), less :data:`ACCELERATOR_CHECKS` where torch sees no
    GPU (on a CPU they would dominate the audit).
    """
    import importlib.util

    names = tuple(available_checks())
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return names
    return tuple(name for name in names if name not in ACCELERATOR_CHECKS)


def available_checks() -> dict[str, type[Check]]:
    """Map every check's name to its class, plug-ins included.

    The built-ins come in their order (the language-model ones last), then plug-ins and registered
    classes by name.
    """
    _import_builtins()
    _load_plugins()
    builtins = (*BUILTIN_CHECKS, *ACCELERATOR_CHECKS)
    others = sorted(name for name in REGISTRY if name not in builtins)
    return {name: REGISTRY[name] for name in (*builtins, *others)}


def finding_kinds() -> dict[tuple[str, str], Kind]:
    """``(check, kind) → Kind`` for every available check: the one place kind metadata is read from."""
    return {(name, kind): spec for name, check in available_checks().items() for kind, spec in check.kind_specs().items()}


def relabel_kinds() -> frozenset[tuple[str, str]]:
    """``(check, kind)`` pairs whose ``suggested_value`` is a label ``export --relabel`` may apply."""
    return frozenset(key for key, spec in finding_kinds().items() if spec.relabel)


def target_kinds() -> frozenset[tuple[str, str]]:
    """``(check, kind)`` pairs that say a row's target is wrong: the fine-tune's dynamics can judge them."""
    return frozenset(key for key, spec in finding_kinds().items() if spec.target)


def __getattr__(name: str) -> Any:
    if name == "RELABEL_KINDS":  # the older, fixed set of kind names: now read from each check's kinds
        return frozenset(kind for _, kind in relabel_kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CheckSpec = Iterable[str | Check] | Mapping[str, Mapping[str, Any]]


def make_checks(spec: CheckSpec | None = None) -> list[Check]:
    """Build checks from names, instances, or a ``{name: params}`` config.

    The config form is the configuration file's ``[checks.*]`` tables; ``None`` builds
    :func:`default_checks`. Unknown names and unknown parameters are errors, never silently ignored.
    """
    registry = available_checks()
    spec = default_checks() if spec is None else spec
    items = spec.items() if isinstance(spec, Mapping) else ((item, {}) for item in spec)
    checks: list[Check] = []
    for item, params in items:
        if isinstance(item, Check):
            checks.append(item)
            continue
        if item not in registry:
            raise UsageError(f"unknown check {item!r}; available: {', '.join(registry)}")
        try:
            checks.append(registry[item](**dict(params or {})))
        except TypeError as error:
            raise UsageError(f"bad parameters for check {item!r}: {error}") from None
    return checks


__all__ = ["ACCELERATOR_CHECKS", "BUILTIN_CHECKS", "ENTRY_POINT_GROUP", "PLUGIN_ERRORS", "RELABEL_KINDS", "Check",
           "CheckResult", "Finding", "Kind", "available_checks", "default_checks", "finding_kinds", "make_checks",
           "register_check", "relabel_kinds", "target_kinds"]
