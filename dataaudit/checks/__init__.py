"""Registered checks. Each module defines one check and registers it by name."""

from __future__ import annotations

import importlib
from typing import Any, Iterable, Mapping

from dataaudit.checks.base import REGISTRY, Check, CheckResult, Finding, register_check
from dataaudit.errors import UsageError

#: Built-in checks in the order they run and report.
BUILTIN_CHECKS = ("duplicate", "conflict", "format", "quality", "outlier", "contamination", "turns", "tools", "reasoning", "length", "language")
#: Finding kinds whose ``suggested_value`` is a label that ``export --relabel`` may apply.
RELABEL_KINDS = frozenset({"label_noise", "label_spelling", "label_conflict"})


def _import_builtins() -> None:
    for name in BUILTIN_CHECKS:
        importlib.import_module(f"dataaudit.checks.{name}")


def available_checks() -> dict[str, type[Check]]:
    _import_builtins()
    return dict(REGISTRY)


CheckSpec = Iterable[str | Check] | Mapping[str, Mapping[str, Any]]


def make_checks(spec: CheckSpec = BUILTIN_CHECKS) -> list[Check]:
    """Build checks from names, instances, or a ``{name: params}`` config (as in YAML or CLI).

    Unknown names and unknown parameters are errors, never silently ignored.
    """
    registry = available_checks()
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


__all__ = ["BUILTIN_CHECKS", "RELABEL_KINDS", "Check", "CheckResult", "Finding", "available_checks", "make_checks", "register_check"]
