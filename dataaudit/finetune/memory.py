"""What keeps the reference fine-tune's memory bounded, and how it is measured.

The levers: activation (gradient) checkpointing, micro-batches of bounded tokens, and handing
freed memory back between runs. :func:`plan_memory` pulls the first two from the memory the
machine has: checkpointing costs half as much time again per training step (29.5 s against 19.4 s
for two steps of 8 GSM8K rows on 2 cores), so it is used only where one row's activations would
not fit otherwise, and micro-batches grow to the device's preferred size as far as the budget allows.

torch's CPU tensors live outside Python's allocator, so tracemalloc sees none of them; the figures
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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_STATUS = "/proc/self/status"
_MEMINFO = "/proc/meminfo"
#: Share of the memory available when training starts that the activations may take by default:
#: the rest stays for the scoring passes, the generations' caches and whatever else runs.
AVAILABLE_SHARE = 0.5
#: Values kept per token for the backward pass, in elements: per decoder layer about four of the
#: MLP's width (gate, up, their product, the activation) and twelve of the model's (norms, the
#: attention's projections and output, residuals); per token of the output layer two of the
#: vocabulary (logits and their gradient). For SmolLM2-135M in fp32 that is 1.96 MB a token, where
#: the measured growth was 1.4–2.3 MB (256 → 1,024 → 4,096 tokens, checkpointing off).
MLP_FACTOR, HIDDEN_FACTOR, VOCAB_FACTOR = 4, 12, 2


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


@dataclass(frozen=True)
class MemoryPlan:
    """How training fits its memory: checkpointing or not, and the micro-batch token bound."""

    checkpointing: bool
    micro_batch_tokens: int
    #: The bound for passes without gradients (scoring, probes): they keep no activations, so
    #: they may be wider, and on a CPU wider passes score faster.
    inference_tokens: int
    #: Bytes the activations may take (``None``: unknown, so today's frugal defaults).
    budget_bytes: int | None
    #: Estimated activation bytes per token under the chosen checkpointing.
    bytes_per_token: int
    #: ``"set"`` where the caller fixed both levers, ``"budget"`` where a budget chose them.
    source: str

    def summary(self) -> dict[str, Any]:
        """The plan as JSON-safe values, for the fine-tune summary."""
        return {"checkpointing": self.checkpointing, "micro_batch_tokens": self.micro_batch_tokens,
                "inference_tokens": self.inference_tokens,
                "budget_gb": None if self.budget_bytes is None else round(self.budget_bytes / 1e9, 2),
                "estimated_activation_gb": round(self.bytes_per_token * self.micro_batch_tokens / 1e9, 3),
                "source": self.source}


def activation_bytes_per_token(config: Any, *, checkpointing: bool, element_bytes: int) -> int:
    """Estimate the bytes a training forward pass keeps per token of a decoder-only ``config``.

    Checkpointed, each layer keeps only its input and one layer at a time is recomputed. Reads
    the usual config names (Llama's and GPT-2's); an unknown architecture counts as SmolLM2-135M.
    """
    def first(*names: str, default: int) -> int:
        for name in names:
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return default

    layers = first("num_hidden_layers", "n_layer", "num_layers", default=30)
    hidden = first("hidden_size", "n_embd", "d_model", default=576)
    mlp = first("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
    vocab = first("vocab_size", default=49_152)
    layer = MLP_FACTOR * mlp + HIDDEN_FACTOR * hidden
    kept = layers * hidden + layer if checkpointing else layers * layer
    return int((kept + VOCAB_FACTOR * vocab) * element_bytes)


def plan_memory(*, budget_bytes: int | None, longest_tokens: int, preferred_tokens: int, full_bytes_per_token: int,
                checkpointed_bytes_per_token: int, inference_preferred_tokens: int | None = None,
                checkpointing: bool | None = None, micro_batch_tokens: int | None = None) -> MemoryPlan:
    """Choose checkpointing and the micro-batch bounds from a memory budget; what the caller set wins.

    Checkpointing goes off when one ``longest_tokens`` row's full activations fit the budget (the
    smallest micro-batch there is). The training bound is then as many tokens as the budget holds,
    at most ``preferred_tokens`` (on a CPU bigger training passes are no faster; on a GPU the whole
    batch); passes without gradients hold about one layer's activations at a time (the
    checkpointed estimate) and go up to ``inference_preferred_tokens`` (default: the training
    preference). A set ``micro_batch_tokens`` bounds both. An unknown budget keeps checkpointing
    on and the preferred bounds.
    """
    source = "set" if checkpointing is not None and micro_batch_tokens is not None else "budget"
    if checkpointing is None:
        checkpointing = budget_bytes is None or full_bytes_per_token * longest_tokens > budget_bytes
    per_token = checkpointed_bytes_per_token if checkpointing else full_bytes_per_token

    def fitting(preferred: int, bytes_per_token: int) -> int:
        held = preferred if budget_bytes is None else budget_bytes // max(bytes_per_token, 1)
        return int(max(1, min(preferred, held)))

    inference_tokens = micro_batch_tokens
    if micro_batch_tokens is None:
        micro_batch_tokens = fitting(preferred_tokens, per_token)
        inference_tokens = fitting(inference_preferred_tokens or preferred_tokens, checkpointed_bytes_per_token)
    return MemoryPlan(checkpointing=bool(checkpointing), micro_batch_tokens=int(micro_batch_tokens),
                      inference_tokens=int(inference_tokens), budget_bytes=budget_bytes,
                      bytes_per_token=int(per_token), source=source)


def available_bytes(device: str) -> int | None:
    """Memory free for this process now: the GPU's free memory, else the system's ``MemAvailable``.

    ``None`` where neither can be read (a CPU off Linux).
    """
    if device.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    try:
        with open(_MEMINFO, encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


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
