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
from dataaudit.finetune.memory import (
    activation_bytes_per_token,
    available_bytes,
    log_memory,
    micro_batches,
    plan_memory,
    release_memory,
    resident_bytes,
)

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


def _checkpointed(model) -> list[bool]:
    return [m.gradient_checkpointing for m in model.modules() if hasattr(m, "gradient_checkpointing")]


def test_the_trained_model_checkpoints_activations_and_the_base_does_not(tiny_causal_lm):
    backend = _backend(tiny_causal_lm, gradient_checkpointing=True)
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
    frugal = _backend(tiny_causal_lm, lora=lora, gradient_checkpointing=True,
                      micro_batch_tokens=1)  # every row a forward pass of its own
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


def test_describe_reports_the_memory_settings_and_the_summary_the_plan(tiny_causal_lm):
    backend = _backend(tiny_causal_lm, device="cpu")
    described = backend.describe()
    assert described["gradient_checkpointing"] is None and described["micro_batch_tokens"] is None
    assert described["memory_budget"] is None
    plan = backend.resources()["memory"]
    assert plan["source"] == "budget" and 1 <= plan["micro_batch_tokens"] <= 256  # bounded on a CPU
    assert _backend(tiny_causal_lm, micro_batch_tokens=64)._micro_batch_tokens() == 64


def test_a_budget_with_room_trains_without_checkpointing_and_a_tiny_one_checkpoints(tiny_causal_lm):
    """The levers follow the memory budget: off where one full-length row fits, on where it does not."""
    roomy, tight = _backend(tiny_causal_lm, memory_budget=4.0), _backend(tiny_causal_lm, memory_budget=1e-6)
    assert roomy.memory_plan().checkpointing is False and tight.memory_plan().checkpointing is True
    assert roomy.memory_plan().micro_batch_tokens == 256 and tight.memory_plan().micro_batch_tokens >= 1
    assert roomy.memory_plan().inference_tokens == 1024  # passes without gradients go wider on a CPU
    for backend, expected in ((roomy, False), (tight, True)):
        trained = backend.fine_tune(EXAMPLES, epochs=1, seed=0)
        assert set(_checkpointed(trained.model)) == {expected}


def test_set_params_is_not_hidden_by_an_earlier_plan(tiny_causal_lm):
    backend = _backend(tiny_causal_lm, memory_budget=4.0)
    assert backend.memory_plan().checkpointing is False
    backend.set_params(gradient_checkpointing=True, micro_batch_tokens=32)
    assert backend.memory_plan().checkpointing is True and backend.memory_plan().micro_batch_tokens == 32


def test_activation_estimate_grows_with_the_model_and_shrinks_with_checkpointing():
    from transformers import LlamaConfig

    small = LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, vocab_size=400)
    smol = LlamaConfig(num_hidden_layers=30, hidden_size=576, intermediate_size=1536, vocab_size=49_152)
    full = activation_bytes_per_token(smol, checkpointing=False, element_bytes=4)
    assert 1.4e6 <= full <= 2.3e6  # the growth measured on SmolLM2-135M in fp32 (see the module)
    assert activation_bytes_per_token(smol, checkpointing=True, element_bytes=4) < full / 3
    assert activation_bytes_per_token(small, checkpointing=False, element_bytes=4) < full / 50
    assert activation_bytes_per_token(smol, checkpointing=False, element_bytes=2) == full // 2


@given(budget=st.one_of(st.none(), st.integers(0, 10**11)), longest=st.integers(1, 4096),
       preferred=st.integers(1, 65_536), full=st.integers(1, 10**7), fraction=st.floats(0.01, 1.0),
       checkpointing=st.sampled_from([None, True, False]), micro=st.one_of(st.none(), st.integers(1, 10**5)))
def test_plan_memory_honours_what_is_set_and_otherwise_fits_the_budget(budget, longest, preferred, full, fraction,
                                                                        checkpointing, micro):
    checkpointed = max(1, int(full * fraction))
    plan = plan_memory(budget_bytes=budget, longest_tokens=longest, preferred_tokens=preferred,
                       full_bytes_per_token=full, checkpointed_bytes_per_token=checkpointed,
                       checkpointing=checkpointing, micro_batch_tokens=micro)
    if checkpointing is not None:
        assert plan.checkpointing is checkpointing
    elif budget is None:
        assert plan.checkpointing  # unknown memory: the frugal choice
    else:
        assert plan.checkpointing is (full * longest > budget)  # off exactly where a full row fits
    assert plan.bytes_per_token == (checkpointed if plan.checkpointing else full)
    if micro is not None:
        assert plan.micro_batch_tokens == micro
    else:
        assert 1 <= plan.micro_batch_tokens <= preferred
        if budget is not None and plan.micro_batch_tokens > 1:
            assert plan.micro_batch_tokens * plan.bytes_per_token <= budget
    assert plan.source == ("set" if checkpointing is not None and micro is not None else "budget")
    if micro is not None:
        assert plan.inference_tokens == micro  # a set bound bounds every pass
    else:
        assert 1 <= plan.inference_tokens <= preferred
        if budget is not None and plan.inference_tokens > 1:
            assert plan.inference_tokens * checkpointed <= budget


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_available_memory_is_read_on_linux():
    available = available_bytes("cpu")
    assert available is not None and 0 < available


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
