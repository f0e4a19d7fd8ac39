"""Registered checks. Each module defines one check and registers it by name."""

from __future__ import annotations

import importlib
from typing import Any, Iterable, Mapping

from dataaudit.checks.base import REGISTRY, Check, CheckResult, Finding, register_check
from dataaudit.errors import UsageError

#: Built-in checks in the order they run and report.
BUILTIN_CHECKS = ("duplicate", "conflict", "format", "quality", "outlier", "contamination", "turns", "length", "language")
#: Built-in checks that run a language model over every row: on by default only where an
#: accelerator is present (see :func:`default_checks`), opt-in by name on a CPU.
ACCELERATOR_CHECKS = ("learnability",)
#: Finding kinds whose ``suggested_value`` is a label that ``export --relabel`` may apply.
RELABEL_KINDS = frozenset({"label_noise", "label_spelling", "label_conflict"})


def _import_builtins() -> None:
    for name in (*BUILTIN_CHECKS, *ACCELERATOR_CHECKS):
        importlib.import_module(f"dataaudit.checks.{name}")


def default_checks() -> tuple[str, ...]:
    """The checks an audit runs when none are named: :data:`BUILTIN_CHECKS`, plus
    :data:`ACCELERATOR_CHECKS` where torch sees a GPU (on a CPU they would dominate the audit)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return BUILTIN_CHECKS
    import torch

    return (*BUILTIN_CHECKS, *ACCELERATOR_CHECKS) if torch.cuda.is_available() else BUILTIN_CHECKS


def available_checks() -> dict[str, type[Check]]:
    _import_builtins()
    return dict(REGISTRY)


CheckSpec = Iterable[str | Check] | Mapping[str, Mapping[str, Any]]


def make_checks(spec: CheckSpec | None = None) -> list[Check]:
    """Build checks from names, instances, or a ``{name: params}`` config (as in YAML or CLI);
    ``None`` builds :func:`default_checks`.

    Unknown names and unknown parameters are errors, never silently ignored.
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


__all__ = ["ACCELERATOR_CHECKS", "BUILTIN_CHECKS", "RELABEL_KINDS", "Check", "CheckResult", "Finding", "available_checks", "default_checks", "make_checks", "register_check"]
