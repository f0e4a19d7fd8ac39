"""Response losses of a causal LM with and without the prompt: what the ``learnability`` check's
instruction-following difficulty (IFD) is computed from.

It lives with the reference fine-tune, whose model loading, chat encoding and memory bound it
reuses; the check reaches it through :data:`dataaudit.registry.SCORERS`, so the checks layer does
not import the fine-tune's.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from dataaudit.progress import NULL_PROGRESS, Progress

logger = logging.getLogger(__name__)

#: The prompt of the "alone" pass (an empty user turn, no system), distinct from any row's prompt.
_ALONE = object()


class LearnabilityScorer:
    """Mean response-token loss of each row with its prompt and without, from one causal LM.

    Loading, chat encoding and the memory bound are the reference fine-tune's
    (:class:`~dataaudit.finetune.causal_lm.CausalLMBackend`), so the losses are the ones a
    fine-tune of that model starts from.
    """

    def __init__(self, *, model: str | None = None, max_length: int = 384, max_response_tokens: int = 128,
                 batch_size: int = 16, micro_batch_tokens: int | None = None, device: str | None = None):
        self.model = model
        self.max_length = max_length
        self.max_response_tokens = max_response_tokens
        self.batch_size = batch_size
        self.micro_batch_tokens = micro_batch_tokens
        self.device = device

    def load(self) -> Any:
        if getattr(self, "backend_", None) is None:
            from dataaudit.finetune.causal_lm import CausalLMBackend

            self.backend_ = CausalLMBackend(model=self.model, max_length=self.max_length, batch_size=self.batch_size,
                                            micro_batch_tokens=self.micro_batch_tokens, device=self.device)
            self.backend_.model_, self.backend_.tokenizer_ = _loaded(self.model, self.backend_._device())
        return self.backend_


    def losses(self, prompts: Sequence[str | None], systems: Sequence[str | None], responses: Sequence[str | None], *,
               progress: Progress = NULL_PROGRESS) -> tuple[np.ndarray, np.ndarray]:
        """``(with_prompt, alone)`` mean losses in nats per response token; NaN for rows without a
        response."""
        n = len(responses)
        both = self._mean_losses([*prompts, *([_ALONE] * n)], [*systems, *([None] * n)], [*responses, *responses],
                                 label="Learnability", progress=progress)
        return both[:n], both[n:]

    def conditioned(self, prompts: Sequence[str | None], systems: Sequence[str | None],
                    responses: Sequence[str | None], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        """Mean loss of each response after the given prompt (the contrastive test passes another
        row's prompt here); NaN for rows without a response."""
        return self._mean_losses(prompts, systems, responses, label="Learnability (contrast)", progress=progress)

    def _mean_losses(self, prompts: Sequence[Any], systems: Sequence[str | None],
                     responses: Sequence[str | None], *, label: str, progress: Progress) -> np.ndarray:
        """One pass per row with a response; the ``_ALONE`` prompt is an empty user turn (the
        "alone" pass), so both passes share the template's framing."""
        import torch

        from dataaudit.finetune.chat_encoding import chat_messages, encode_example, prompt_ids, response_ids
        from dataaudit.finetune.lm_passes import response_losses

        backend = self.load()
        model, tokenizer = backend.base_model(), backend.tokenizer_
        scored = [i for i, response in enumerate(responses) if response]
        bare = prompt_ids(tokenizer, chat_messages("", None))
        encoded = []
        for i in scored:
            answer = response_ids(tokenizer, responses[i])[: self.max_response_tokens]
            head = bare if prompts[i] is _ALONE else prompt_ids(tokenizer, chat_messages(prompts[i] or "", systems[i]))
            encoded.append(encode_example(head, answer, max_length=self.max_length))
        loss = np.full(len(encoded), np.nan)
        tokens = sum(len(e.input_ids) for e in encoded)
        started = time.perf_counter()
        with torch.inference_mode(), progress.task(label, total=len(encoded)) as task:
            for batch in backend.inference_batches([len(e.input_ids) for e in encoded]):
                summed, counts = response_losses(model, [encoded[j] for j in batch])
                loss[batch] = (summed / counts.clamp(min=1)).float().cpu().numpy()
                task.advance(len(batch))
        seconds = max(time.perf_counter() - started, 1e-9)
        logger.info("%s: %d passes (%d tokens) in %.1f s: %.2f passes/s, %.0f tokens/s on %s",
                    label, len(encoded), tokens, seconds, len(encoded) / seconds, tokens / seconds, backend._device())
        out = np.full(len(responses), np.nan)
        out[scored] = loss
        return out


@lru_cache(maxsize=1)
def _loaded(model: str | None, device: str) -> tuple[Any, Any]:
    """The frozen base model and tokenizer, kept for the next audit in this process (a notebook
    re-running the check pays the load once). Scoring never writes to it."""
    import torch

    from dataaudit.finetune.models import load_causal_lm

    return load_causal_lm(model, device=device, dtype=torch.float32)
