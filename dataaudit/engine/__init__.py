"""Engines: where the row-parallel stages of an audit run (this process, or a Ray cluster).

``make_engine("ray")`` or ``make_engine(RayEngine(address="auto"))``; the registry maps names
to classes so shared code never asks which engine it holds. Importing this package never
imports ``ray``.
"""

from __future__ import annotations

from dataaudit.engine.base import Engine, FrameFunction
from dataaudit.engine.local import LocalEngine
from dataaudit.engine.ray_engine import RayEngine
from dataaudit.errors import UsageError

#: Engine classes by the name the CLI and the API accept.
from dataaudit.registry import ENGINES as _ENGINE_REGISTRY

ENGINES: dict[str, type] = {name: _ENGINE_REGISTRY.load(name) for name in _ENGINE_REGISTRY.names()}


def make_engine(engine: "str | Engine") -> Engine:
    """An engine from its registered name (default parameters) or an engine instance as is."""
    if isinstance(engine, str):
        if engine not in ENGINES:
            raise UsageError(f"unknown engine {engine!r}; one of {sorted(ENGINES)}")
        return ENGINES[engine]()
    if not isinstance(engine, Engine):
        raise UsageError(f"engine must be a name ({sorted(ENGINES)}) or an Engine, got {type(engine).__name__}")
    return engine


__all__ = ["ENGINES", "Engine", "FrameFunction", "LocalEngine", "RayEngine", "make_engine"]
