"""The fine-tune's memory levers on a tiny Llama: in effect, and changing nothing but memory."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataaudit.finetune.base import Examples
from dataaudit.finetune.causal_lm import CausalLMBackend
from dataaudit.finetune.memory import log_memory, micro_batches, release_memory, resident_bytes

PROMPTS = ["What is two plus two?", "Is the sky blue?", "Name the capital of France.", "Translate cat to French.",
           "How many legs does a spider have?", "Write a haiku about rain, a short one please."]
TARGETS = ["The answer is 4.", "yes", "Paris", "chat", "8", "Soft rain on the roof, the garden drinks in silence."]
EXAMPLES = Examples(rows=np.arange(len(PROMPTS)), prompts=PROMPTS, targets=TARGETS)


def _backend(model: str, **options) -> CausalLMBackend:
    return CausalLMBackend(model=model, batch_size=6, max_length=64, max_new_tokens=4, learning_rate=1e-2,
                           dtype="float32", probe_questions=2, **options)


def _trainable(model) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters() if p.requires_grad}


@given(st.lists(st.integers(1, 50), max_size=12), st.integers(1, 120))
def test_micro_batches_split_a_batch_into_consecutive_parts_within_the_token_budget(lengths, budget):
    parts = micro_batches(np.array(lengths, dtype=np.int64), budget)
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    assert joined.tolist() == list(range(len(lengths)))
    for part in parts:
        widest = max(lengths[i] for i in part)
        assert len(part) == 1 or len(part) * widest <= budget


def test_the_trained_model_checkpoints_activations_and_the_base_does_not(tiny_causal_lm):
    backend = _backend(tiny_causal_lm)
    seen = []
    backend.fine_tune(EXAMPLES, epochs=1, seed=0, after_epoch=lambda epoch, model: seen.append(model))
    flags = [m.gradient_checkpointing for m in seen[0].modules() if hasattr(m, "gradient_checkpointing")]
    assert flags and all(flags)
    assert not any(getattr(m, "gradient_checkpointing", False) for m in backend.base_model().modules())


@pytest.mark.parametrize("lora", [True, False])
def test_micro_batches_and_checkpointing_train_the_same_model_as_one_plain_batch(tiny_causal_lm, lora):
    """Accumulated micro-batch gradients are the batch's gradient: same per-row confidence, same weights (to the
    float rounding that Adam amplifies on near-zero gradients with the test's lr of 1e-2)."""
    plain = _backend(tiny_causal_lm, lora=lora, gradient_checkpointing=False, micro_batch_tokens=10_000)
    frugal = _backend(tiny_causal_lm, lora=lora, micro_batch_tokens=1)  # every row a forward pass of its own
    a = plain.fine_tune(EXAMPLES, epochs=2, seed=0)
    b = frugal.fine_tune(EXAMPLES, epochs=2, seed=0)
    assert a.steps == b.steps == 2  # one optimizer step per batch of 6, whatever the micro-batches
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-4)
    weights_a, weights_b = _trainable(a.model), _trainable(b.model)
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        np.testing.assert_allclose(weights_a[name], weights_b[name], rtol=1e-3, atol=1e-4, err_msg=name)


def test_scoring_in_micro_batches_gives_the_same_losses(tiny_causal_lm):
    whole = _backend(tiny_causal_lm, micro_batch_tokens=10_000)
    split = _backend(tiny_causal_lm, micro_batch_tokens=1)
    a = whole.evaluate(whole.base_model(), EXAMPLES).get_column("loss").to_numpy()
    b = split.evaluate(split.base_model(), EXAMPLES).get_column("loss").to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_describe_reports_the_memory_settings(tiny_causal_lm):
    backend = _backend(tiny_causal_lm, device="cpu")
    described = backend.describe()
    assert described["gradient_checkpointing"] is True and described["micro_batch_tokens"] is None
    assert backend._micro_batch_tokens() == 256  # bounded by default on a CPU
    assert _backend(tiny_causal_lm, micro_batch_tokens=64)._micro_batch_tokens() == 64


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_resident_memory_is_measured_logged_and_released(caplog):
    current, peak = resident_bytes()
    assert current is not None and peak is not None and 0 < current <= peak
    block = np.ones(64 << 20, dtype=np.uint8)  # 64 MB touched
    assert resident_bytes()[1] >= peak
    del block
    release_memory()
    with caplog.at_level(logging.DEBUG, logger="dataaudit.finetune.memory"):
        log_memory("a test")
    assert any("memory after a test: RSS" in record.getMessage() for record in caplog.records)
