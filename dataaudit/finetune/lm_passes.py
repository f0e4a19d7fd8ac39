"""Forward passes and generation of a causal LM, shared by its fine-tuning, scoring and probes.

The model-facing mechanics of :class:`~dataaudit.finetune.causal_lm.CausalLMBackend`: left
padding, the response-only loss (the output layer sees only the positions that predict response
tokens) and seeded generation with a relative ``min_p`` tail cut. Kept apart from the backend,
which decides what to train and score; these only run a batch through the model.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

from dataaudit.errors import UsageError
from dataaudit.finetune.base import length_batches
from dataaudit.finetune.chat_encoding import IGNORE_INDEX, EncodedExample
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.runtime import seeded_torch


def _left_padded(sequences: Sequence[Sequence[int]], pad: int, device: Any) -> tuple[Any, Any, Any]:
    """Pad ``sequences`` on the left into ``input_ids``, ``attention_mask`` and ``position_ids``.

    Every sequence then ends at the last column, so the response tokens line up for
    ``logits_to_keep``.
    """
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if len(sequence):
            ids[row, width - len(sequence):] = torch.tensor(list(sequence), dtype=torch.long)
            mask[row, width - len(sequence):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def response_losses(model: Any, examples: Sequence[EncodedExample]) -> tuple[Any, Any]:
    """Sum each example's cross-entropy over its response tokens, and count those tokens.

    Only the positions that predict response tokens go through the output layer (a 49k-word
    softmax over every prompt token would cost as much again as the rest of a small model).
    """
    import torch

    device = next(model.parameters()).device
    ids, mask, positions = _left_padded([e.input_ids for e in examples], 0, device)
    labels, _, _ = _left_padded([e.labels for e in examples], IGNORE_INDEX, device)
    width = ids.shape[1]
    keep = min(max(e.response_tokens for e in examples) + 1, width)
    # Positions as a tensor, not a count: indexing copies them into one contiguous block, so the
    # output layer runs as a single matrix product; a count slices a strided view, which torch
    # multiplies by a frozen (LoRA) output layer through a batched copy of the whole vocabulary
    # matrix — twice as slow end to end on a CPU.
    extra = {}
    if _accepts_logits_to_keep(model):
        extra["logits_to_keep"] = torch.arange(width - keep, width, device=device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, **extra).logits
    logits = logits[:, -keep:-1]
    targets = labels[:, width - logits.shape[1]:]
    scored = targets != IGNORE_INDEX  # the softmax runs over response tokens only, not padding
    losses = torch.nn.functional.cross_entropy(logits[scored].float(), targets[scored], reduction="none")
    summed = torch.zeros(len(examples), dtype=losses.dtype, device=device)
    summed = summed.index_add(0, scored.nonzero()[:, 0], losses)
    return summed, scored.sum(dim=1)


def _accepts_logits_to_keep(model: Any) -> bool:
    """Tell whether the (unwrapped) model's forward takes ``logits_to_keep`` (recent transformers)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def _generate(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, batch_size: int,
              temperature: float = 0.0, min_p: float = 0.0, seed: int = 0,
              progress: Progress = NULL_PROGRESS) -> tuple[list[str], list[bool]]:
    """Continue ``prompts`` (token ids) and decode the continuations without special tokens.

    Also returns whether each one ended by itself (a stop token) rather than at
    ``max_new_tokens``: greedy at ``temperature`` 0, else sampling from a seeded generator that
    leaves torch's global state as it was. No top-k/top-p (they cut by rank or mass, so a 10%
    choice can vanish); only the ``min_p`` tail cut, which is relative to the favourite and keeps
    the survivors' odds.
    """
    import torch
    from transformers import GenerationConfig

    if not prompts:
        return [], []
    stops = _stop_ids(model, tokenizer)
    if not 0.0 <= min_p <= 1.0:
        raise UsageError(f"min_p must be between 0 and 1, got {min_p}")
    sampling = ({"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0, "min_p": min_p or None}
                if temperature > 0 else {"do_sample": False})
    config = GenerationConfig(max_new_tokens=max_new_tokens, num_beams=1, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=stops, **sampling)
    device = next(model.parameters()).device
    outputs: list[str] = [""] * len(prompts)
    complete: list[bool] = [False] * len(prompts)
    with torch.inference_mode(), seeded_torch(seed), progress.task("Generating", total=len(prompts)) as task:
        for batch in length_batches([len(p) for p in prompts], batch_size, longest_first=True):
            ids, mask, _ = _left_padded([prompts[i] for i in batch], tokenizer.pad_token_id, device)
            generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            continuation = generated[:, ids.shape[1]:]
            texts = tokenizer.batch_decode(continuation, skip_special_tokens=True)
            # A finished row is padded on to the batch's length, so look for a stop anywhere.
            stopped = torch.isin(continuation, torch.tensor(stops, device=continuation.device)).any(dim=1).tolist()
            for i, text, ended in zip(batch, texts, stopped):
                outputs[i] = text.strip()
                complete[i] = bool(ended) or continuation.shape[1] < max_new_tokens
            task.advance(len(batch))
    return outputs, complete


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """List the tokenizer's EOS plus any the model's generation config lists (end-of-turn tokens)."""
    stops = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for stop in configured if isinstance(configured, (list, tuple)) else [configured]:
        if isinstance(stop, int) and stop not in stops:
            stops.append(stop)
    return stops
