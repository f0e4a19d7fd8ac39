"""The reference fine-tune: whether a model trained on this data shows what the audit predicted.

Backends (:class:`EncoderBackend` for labelled data, :class:`CausalLMBackend` for generative
data) share one engine, :class:`ReferenceFineTune`; :func:`finetune` is the one-call API.
Everything here imports torch lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # The front end lives above dataaudit.config (see dataaudit.finetune_runner); these names stay.
    "finetune": "dataaudit.finetune_runner",
    "save_finetune": "dataaudit.finetune_runner",
    "ReferenceFineTune": "dataaudit.finetune.engine",
    "choose_backend": "dataaudit.finetune.engine",
    "FineTuneResult": "dataaudit.finetune.result",
    "FineTuneBackend": "dataaudit.finetune.base",
    "Examples": "dataaudit.finetune.base",
    "EncoderBackend": "dataaudit.finetune.encoder",
    "CausalLMBackend": "dataaudit.finetune.causal_lm",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dataaudit.finetune' has no attribute {name!r}")
