"""What keeps the reference fine-tune's memory bounded, and how it is measured.

The levers: activation (gradient) checkpointing, micro-batches of bounded tokens, and handing
freed memory back between runs. torch's CPU tensors live outside Python's allocator, so tracemalloc sees none of them; the figures
here come from ``/proc/self/status`` (``VmRSS`` now, ``VmHWM`` the peak). Freed tensors' pages
often stay with glibc's heaps rather than going back to the system, so a later stage's peak sits
on top of an earlier stage's leftovers; :func:`release_memory` collects and trims between the
reference fine-tune's experiments. Everything degrades to a no-op off Linux/glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from functools import lru_cache
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_STATUS = "/proc/self/status"


def micro_batches(lengths: np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Consecutive slices of a batch (positions into ``lengths``) whose rows x longest row stay
    within ``max_tokens``; a row longer than that gets a part of its own."""
    parts: list[np.ndarray] = []
    start, widest = 0, 0
    for end, length in enumerate(np.asarray(lengths, dtype=np.int64).tolist()):
        widest = max(widest, length)
        if end > start and (end - start + 1) * widest > max_tokens:
            parts.append(np.arange(start, end))
            start, widest = end, length
    if len(lengths):
        parts.append(np.arange(start, len(lengths)))
    return parts


def checkpoint_activations(model: Any) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them (only in
    training mode). Non-reentrant, so frozen weights under LoRA adapters need no grad tricks."""
    options = {"use_reentrant": False}
    try:
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    except (ValueError, AttributeError) as error:  # architectures without checkpointing support
        logger.info("gradient checkpointing unavailable for %s (%s); training keeps every activation",
                    type(model).__name__, error)


def resident_bytes() -> tuple[int | None, int | None]:
    """``(current, peak)`` resident set size of this process in bytes; ``None`` where unknown."""
    values: dict[str, int] = {}
    try:
        with open(_STATUS, encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None, None
    return values.get("VmRSS"), values.get("VmHWM")


def log_memory(stage: str) -> None:
    """One DEBUG line with the resident memory after ``stage`` and the peak so far."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    current, peak = resident_bytes()
    if current is not None:
        logger.debug("memory after %s: RSS %.2f GB, peak %.2f GB", stage, current / 1e9, (peak or 0) / 1e9)


def release_memory() -> None:
    """Collect Python garbage (cycles can hold tensors) and return free heap pages to the system."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
