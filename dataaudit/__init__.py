"""dataaudit — audit instruction fine-tuning datasets before you train on them.

The public surface is small and everything heavy is imported on first use, so
``import dataaudit`` stays instant.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from dataaudit._version import __version__

# numba's default OpenMP threading layer leaves its worker threads spinning after UMAP, HDBSCAN
# or the pair kernels ran, and torch's own OpenMP threads then fight them for the cores: the
# reference fine-tune's encoder ran 30-40x slower after an audit in the same process (measured
# on 2 cores: 38 s instead of 1 s for one general probe). numba's own work-queue layer has no
# such threads. Set before numba is imported; a user's explicit choice wins.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

if TYPE_CHECKING:
    from dataaudit.config import AuditConfig, read_config
    from dataaudit.dataset import Dataset
    from dataaudit.errors import DataAuditError, InputError, UsageError
    from dataaudit.io.load import from_records, load
    from dataaudit.io.writers import write_partition
    from dataaudit.profile import profile_dataset
    from dataaudit.result import AuditResult
    from dataaudit.runner import audit, default_embedder
    from dataaudit.selection import Selection, select

_LAZY = {
    "Dataset": "dataaudit.dataset",
    "DataAuditError": "dataaudit.errors",
    "InputError": "dataaudit.errors",
    "UsageError": "dataaudit.errors",
    "load": "dataaudit.io.load",
    "from_records": "dataaudit.io.load",
    "audit": "dataaudit.runner",
    "default_embedder": "dataaudit.runner",
    "AuditResult": "dataaudit.result",
    "write_partition": "dataaudit.io.writers",
    "profile_dataset": "dataaudit.profile",
    "AuditConfig": "dataaudit.config",
    "read_config": "dataaudit.config",
    "select": "dataaudit.selection",
    "Selection": "dataaudit.selection",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dataaudit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
