"""The causal-LM backend on a tiny randomly initialised Llama: contracts, not quality."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.finetune.base import EVALUATION_SCHEMA, Examples
from dataaudit.finetune.causal_lm import CausalLMBackend, _nearest_prompts
from dataaudit.finetune.chat_encoding import IGNORE_INDEX, PLAIN_TEMPLATE, encode_example, render_prompt

PROMPTS = ["What is two plus two?", "Is the sky blue?", "Name the capital of France.", "Translate cat to French.",
           "How many legs does a spider have?", "Write a haiku about rain."]
TARGETS = ["The answer is 4.", "yes", "Paris", "chat", "8", "Soft rain on the roof."]


def _examples(n: int = len(PROMPTS), *, first_row: int = 0) -> Examples:
    return Examples(rows=np.arange(first_row, first_row + n), prompts=PROMPTS[:n], targets=TARGETS[:n])


@pytest.fixture
def backend(tiny_causal_lm) -> CausalLMBackend:
    return CausalLMBackend(model=tiny_causal_lm, batch_size=4, max_length=64, max_new_tokens=4, learning_rate=1e-2,
                           dtype="float32", probe_questions=2)


def _parameters(model) -> dict[str, np.ndarray]:
    return {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters()}


# -- labels -----------------------------------------------------------------------------------------
def test_only_response_tokens_carry_labels():
    encoded = encode_example([1, 2, 3], [7, 8, 9], max_length=10)
    assert encoded.input_ids == [1, 2, 3, 7, 8, 9]
    assert encoded.labels == [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 7, 8, 9]
    assert not encoded.truncated
    assert encoded.response_tokens == 3


def test_a_long_prompt_loses_its_start_not_the_response():
    encoded = encode_example(list(range(10)), [70, 80], max_length=6)
    assert encoded.input_ids == [6, 7, 8, 9, 70, 80]
    assert encoded.labels == [IGNORE_INDEX] * 4 + [70, 80]
    assert encoded.truncated


def test_a_response_longer_than_the_window_still_leaves_some_prompt():
    encoded = encode_example(list(range(10)), list(range(100, 120)), max_length=8)
    assert encoded.input_ids == [8, 9, *range(100, 106)]
    assert encoded.response_tokens == 6


@settings(max_examples=200, deadline=None)
@given(prompt=st.lists(st.integers(0, 50), max_size=40), response=st.lists(st.integers(0, 50), min_size=1, max_size=40),
       max_length=st.integers(2, 60))
def test_encoding_fits_the_window_and_keeps_the_prompt_end_and_response_start(prompt, response, max_length):
    encoded = encode_example(prompt, response, max_length=max_length)
    assert len(encoded.input_ids) == len(encoded.labels) <= max_length
    kept_prompt = len(encoded.labels) - encoded.response_tokens
    assert encoded.labels[:kept_prompt] == [IGNORE_INDEX] * kept_prompt
    assert encoded.input_ids[kept_prompt:] == response[: encoded.response_tokens]
    assert encoded.input_ids[:kept_prompt] == prompt[len(prompt) - kept_prompt:]
    assert encoded.response_tokens >= 1
    assert encoded.truncated == (len(prompt) + len(response) > max_length)


def test_the_backend_masks_exactly_the_rendered_prompt(backend):
    tokenizer = backend._tokenizer()
    [encoded] = backend._encode(["Is the sky blue?"], [None], ["yes"], max_length=64)
    prompt_ids = tokenizer(render_prompt(tokenizer, [{"role": "user", "content": "Is the sky blue?"}]),
                           add_special_tokens=False)["input_ids"]
    assert encoded.input_ids[: len(prompt_ids)] == prompt_ids
    assert encoded.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    response = [t for t in encoded.labels if t != IGNORE_INDEX]
    assert response[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(response, skip_special_tokens=True) == "yes"


def test_prompts_use_the_chat_template_and_fall_back_to_a_plain_format(backend):
    tokenizer = backend._tokenizer()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render_prompt(tokenizer, messages) == "<|system|>Be brief.</s><|user|>Hi</s><|assistant|>"

    class NoTemplate:
        chat_template = None

    shots = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}]
    plain = render_prompt(NoTemplate(), [messages[0], *shots, messages[1]])
    assert plain == "Be brief.\n\n" + PLAIN_TEMPLATE.format(prompt="Q1") + "A1\n\n" + PLAIN_TEMPLATE.format(prompt="Hi")


# -- fine-tuning ------------------------------------------------------------------------------------
def test_fine_tune_records_per_example_confidence_per_epoch(backend):
    epochs_seen = []
    trained = backend.fine_tune(_examples(), epochs=3, seed=0,
                                after_epoch=lambda epoch, model: epochs_seen.append((epoch, model.training)))
    assert trained.confidence.shape == (3, len(PROMPTS))
    assert np.all((trained.confidence > 0) & (trained.confidence <= 1))
    assert trained.steps == 3 * 2
    assert len(trained.epoch_losses) == 3
    assert np.allclose(trained.epoch_losses, (-np.log(trained.confidence)).mean(axis=1))
    assert epochs_seen == [(0, False), (1, False), (2, False)]


def test_loss_falls_on_a_memorisable_set(backend):
    trained = backend.fine_tune(_examples(), epochs=4, seed=0)
    assert trained.epoch_losses[-1] < trained.epoch_losses[0] - 0.05


def test_same_seed_same_run_and_a_shorter_run_is_a_prefix(backend):
    one = backend.fine_tune(_examples(), epochs=1, seed=3)
    two = backend.fine_tune(_examples(), epochs=2, seed=3)
    again = backend.fine_tune(_examples(), epochs=2, seed=3)
    np.testing.assert_array_equal(two.confidence, again.confidence)
    np.testing.assert_allclose(one.confidence[0], two.confidence[0], rtol=1e-5)


def test_lora_leaves_the_base_model_untouched(backend):
    before = _parameters(backend.base_model())
    trained = backend.fine_tune(_examples(), epochs=2, seed=0)
    after = _parameters(backend.base_model())
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[name], after[name]) for name in before)
    adapters = [name for name, p in trained.model.named_parameters() if p.requires_grad]
    assert adapters and all("lora_" in name for name in adapters)


def test_full_fine_tuning_changes_a_copy_of_every_weight(tiny_causal_lm):
    backend = CausalLMBackend(model=tiny_causal_lm, lora=False, batch_size=4, max_length=64, learning_rate=1e-2,
                              dtype="float32")
    before = _parameters(backend.base_model())
    trained = backend.fine_tune(_examples(), epochs=2, seed=0)
    tuned = _parameters(trained.model)
    assert all(np.array_equal(before[name], value) for name, value in _parameters(backend.base_model()).items())
    assert tuned.keys() == before.keys()
    assert all(not np.array_equal(before[name], tuned[name]) for name in before)
    assert trained.epoch_losses[-1] < trained.epoch_losses[0]


def test_training_examples_must_have_targets(backend):
    examples = Examples(rows=np.arange(2), prompts=PROMPTS[:2], targets=["yes", None])
    with pytest.raises(ValueError, match="target"):
        backend.fine_tune(examples, epochs=1, seed=0)


# -- evaluation -------------------------------------------------------------------------------------
def test_evaluate_scores_targets_and_leaves_unknown_ones_nan(backend):
    examples = Examples(rows=np.array([10, 11, 12]), prompts=PROMPTS[:3], targets=["The answer is 4.", None, "Paris"])
    frame = backend.evaluate(backend.base_model(), examples)
    assert frame.schema == pl.Schema(EVALUATION_SCHEMA)
    assert frame.get_column("row").to_list() == [10, 11, 12]
    loss = frame.get_column("loss").to_numpy()
    assert np.isfinite(loss[[0, 2]]).all() and (loss[[0, 2]] > 0).all()
    assert np.isnan(loss[1])
    assert frame.get_column("output").null_count() == 3
    assert frame.get_column("correct").is_nan().all()


def test_evaluate_matches_the_training_loss_of_a_batch_of_one(backend):
    """Padding must not change a score: each example alone and in a padded batch agree."""
    examples = _examples()
    together = backend.evaluate(backend.base_model(), examples).get_column("loss").to_numpy()
    alone = [backend.evaluate(backend.base_model(), examples.take([i])).get_column("loss").item()
             for i in range(len(examples))]
    np.testing.assert_allclose(together, alone, rtol=1e-4)


def test_generation_fills_output_and_judges_final_answers(backend):
    examples = Examples(rows=np.arange(3), prompts=PROMPTS[:3], targets=["The answer is 4.", None, "Paris"])
    trained = backend.fine_tune(_examples(), epochs=1, seed=0)
    frame = backend.evaluate(trained.model, examples, generate=True)
    outputs = frame.get_column("output").to_list()
    assert all(isinstance(output, str) for output in outputs)
    correct = frame.get_column("correct").to_numpy()
    assert set(correct[[0, 2]].tolist()) <= {0.0, 1.0}
    assert np.isnan(correct[1])


def test_generations_are_sampled_reproducibly_and_greedy_at_temperature_zero(tiny_causal_lm):
    import torch

    examples = Examples(rows=np.arange(6), prompts=PROMPTS, targets=[None] * 6)

    def outputs(temperature: float) -> list[str]:
        backend = CausalLMBackend(model=tiny_causal_lm, batch_size=3, max_length=64, max_new_tokens=6,
                                  temperature=temperature, dtype="float32")
        return backend.evaluate(backend.base_model(), examples, generate=True).get_column("output").to_list()

    state = torch.random.get_rng_state()
    sampled = outputs(1.0)
    assert torch.equal(state, torch.random.get_rng_state())  # the seeded sampler leaves the global stream alone
    assert sampled == outputs(1.0)
    greedy = outputs(0.0)
    assert greedy == outputs(0.0) and greedy != sampled  # a random tiny model's distribution is flat: samples differ


def test_min_p_one_keeps_only_the_favourite_so_sampling_is_greedy(tiny_causal_lm):
    """min_p cuts relative to the most likely token: at 1.0 nothing else survives."""
    examples = Examples(rows=np.arange(6), prompts=PROMPTS, targets=[None] * 6)

    def outputs(temperature: float, min_p: float) -> list[str]:
        backend = CausalLMBackend(model=tiny_causal_lm, batch_size=3, max_length=64, max_new_tokens=6,
                                  temperature=temperature, min_p=min_p, dtype="float32")
        return backend.evaluate(backend.base_model(), examples, generate=True).get_column("output").to_list()

    greedy = outputs(0.0, 0.0)
    assert outputs(1.0, 1.0) == greedy
    assert outputs(1.0, 0.0) != greedy  # without the cut a flat random model samples other tokens


@pytest.mark.parametrize("min_p", [-0.1, 1.5])
def test_min_p_outside_zero_to_one_is_a_usage_error(tiny_causal_lm, min_p):
    from dataaudit.errors import UsageError

    with pytest.raises(UsageError, match="min_p"):  # at construction, by the declared constraint
        CausalLMBackend(model=tiny_causal_lm, max_length=64, max_new_tokens=2, min_p=min_p, dtype="float32")


def test_generation_batches_are_sized_apart_from_training_batches(tiny_causal_lm):
    """Greedy outputs do not depend on how many prompts share a decoding batch (left padding
    with explicit positions)."""
    examples = Examples(rows=np.arange(6), prompts=PROMPTS, targets=[None] * 6)

    def outputs(generation_batch_size: int) -> list[str]:
        backend = CausalLMBackend(model=tiny_causal_lm, batch_size=2, generation_batch_size=generation_batch_size,
                                  max_length=64, max_new_tokens=5, temperature=0.0, dtype="float32")
        return backend.evaluate(backend.base_model(), examples, generate=True).get_column("output").to_list()

    assert outputs(1) == outputs(6)


def test_generations_cut_off_at_the_token_limit_are_marked_incomplete(tiny_causal_lm):
    """A generation that stopped by itself is complete; one that ran into max_new_tokens is not
    (it never reached its final line, so the format evidence must not count it)."""
    import torch

    backend = CausalLMBackend(model=tiny_causal_lm, batch_size=2, max_length=64, max_new_tokens=3, dtype="float32")
    model, tokenizer = backend.base_model(), backend._tokenizer()
    word = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("answer"))[0]
    endings = {True: [word, tokenizer.eos_token_id, tokenizer.pad_token_id], False: [word, word, word]}

    def scripted_generate(input_ids, attention_mask, generation_config):
        tails = torch.tensor([endings[row % 2 == 0] for row in range(len(input_ids))])
        return torch.cat([input_ids, tails], dim=1)

    model.generate = scripted_generate
    examples = Examples(rows=np.arange(2), prompts=[PROMPTS[0]] * 2, targets=[None] * 2)
    frame = backend.evaluate(model, examples, generate=True)
    ended = {output: complete for output, complete in frame.select("output", "complete").iter_rows()}
    assert ended == {tokenizer.decode([word]).strip(): True, tokenizer.decode([word] * 3).strip(): False}


def test_evaluating_nothing_gives_an_empty_frame(backend):
    empty = Examples(rows=np.zeros(0, dtype=np.int64), prompts=[], targets=[])
    frame = backend.evaluate(backend.base_model(), empty, generate=True)
    assert frame.height == 0 and frame.schema == pl.Schema(EVALUATION_SCHEMA)


def test_few_shot_scores_every_row_with_the_base_model(backend):
    train = _examples(4)
    heldout = Examples(rows=np.array([20, 21]), prompts=["What is three plus three?", "Is grass green?"],
                       targets=["The answer is 6.", None])
    frame = backend.few_shot(train, heldout, k=2, seed=0, generate=True)
    assert frame.schema == pl.Schema(EVALUATION_SCHEMA)
    assert frame.get_column("row").to_list() == [20, 21]
    assert np.isfinite(frame.get_column("loss").item(0)) and np.isnan(frame.get_column("loss").item(1))
    assert frame.get_column("output").null_count() == 0
    zero_shot = backend.few_shot(train, heldout, k=0, seed=0)
    assert zero_shot.get_column("loss").item(0) == pytest.approx(
        backend.evaluate(backend.base_model(), heldout).get_column("loss").item(0), rel=1e-5)


def test_nearest_prompts_are_the_most_similar_placed_last():
    train = ["how do I reset my password", "what is the weather today", "reset password link expired",
             "weather in Paris tomorrow"]
    chosen = _nearest_prompts(train, ["my password reset link does not work"], k=2, seed=0)
    assert chosen[0].tolist() == [0, 2]
    assert [c.tolist() for c in _nearest_prompts(train, ["anything"], k=0, seed=0)] == [[]]


def test_nearest_prompts_break_ties_by_seed():
    train = ["alpha", "beta", "gamma", "delta", "epsilon"]
    picks = {tuple(_nearest_prompts(train, ["zzz"], k=2, seed=seed)[0].tolist()) for seed in range(10)}
    assert len(picks) > 1
    first, second = (_nearest_prompts(train, ["zzz"], k=2, seed=4)[0].tolist() for _ in range(2))
    assert first == second


def test_general_probe_reports_score_perplexity_and_qa(backend, fake_probes):
    result = backend.general_probe(backend.base_model())
    assert {"score", "perplexity", "general_qa_accuracy", "items"} <= result.keys()
    assert 0 < result["score"] <= 1
    assert result["perplexity"] == pytest.approx(1 / result["score"])
    assert 0 <= result["general_qa_accuracy"] <= 1
    assert len(result["items"]) == len(fake_probes.general_passages())


@pytest.mark.parametrize(("lora", "dtype", "expected"), [
    (True, None, "float32"), (False, None, "float32"), (True, "bfloat16", "bfloat16"),
    (False, "bfloat16", "float32"), (True, "float32", "float32"),
])
def test_weights_are_fp32_unless_bf16_is_asked_for_and_never_bf16_for_full_fine_tuning(lora, dtype, expected):
    assert CausalLMBackend(lora=lora, dtype=dtype, device="cpu")._weights_dtype() == expected


def test_an_unknown_dtype_is_a_usage_error():
    from dataaudit.errors import UsageError

    with pytest.raises(UsageError, match="dtype"):
        CausalLMBackend(dtype="float16")._weights_dtype()


def test_lora_on_bf16_weights_trains_fp32_adapters(tiny_causal_lm):
    import torch

    backend = CausalLMBackend(model=tiny_causal_lm, batch_size=4, max_length=64, learning_rate=1e-2, dtype="bfloat16")
    trained = backend.fine_tune(_examples(), epochs=2, seed=0)
    assert next(backend.base_model().parameters()).dtype == torch.bfloat16
    assert {p.dtype for p in trained.model.parameters() if p.requires_grad} == {torch.float32}
    assert np.isfinite(backend.evaluate(trained.model, _examples()).get_column("loss").to_numpy()).all()


def test_describe_lists_the_constructor_parameters(backend):
    described = backend.describe()
    assert described["backend"] == "causal-lm" and described["metric"] == "loss"
    assert described["lora"] is True and described["max_length"] == 64


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("lora", [True, False])
def test_on_a_gpu_bf16_lora_and_full_fine_tuning_under_autocast(tiny_causal_lm, fake_probes, lora):
    import torch

    backend = CausalLMBackend(model=tiny_causal_lm, lora=lora, batch_size=4, max_length=64, max_new_tokens=4,
                              learning_rate=1e-2, probe_questions=2, dtype="bfloat16")
    probes_seen = []
    trained = backend.fine_tune(_examples(), epochs=2, seed=0,
                                after_epoch=lambda epoch, model: probes_seen.append(backend.general_probe(model)))
    base = next(backend.base_model().parameters())
    assert base.device.type == "cuda"
    assert base.dtype == (torch.bfloat16 if lora else torch.float32)
    assert trained.epoch_losses[-1] < trained.epoch_losses[0]
    assert len(probes_seen) == 2 and all(0 < p["score"] <= 1 for p in probes_seen)
    frame = backend.evaluate(trained.model, _examples(), generate=True)
    assert np.isfinite(frame.get_column("loss").to_numpy()).all()
    assert frame.get_column("output").null_count() == 0
    again = backend.fine_tune(_examples(), epochs=2, seed=0)
    np.testing.assert_allclose(again.confidence, trained.confidence, rtol=1e-2)


class _RecordingProgress:
    def __init__(self):
        self.tasks: dict[str, list[int]] = {}

    def task(self, description, total=None):
        from contextlib import contextmanager

        record = self.tasks.setdefault(description, [total, 0])

        class Task:
            def advance(self, amount=1):
                record[1] += amount

        @contextmanager
        def opened():
            yield Task()

        return opened()


def test_progress_counts_training_steps_scored_rows_and_generations(backend):
    progress = _RecordingProgress()
    trained = backend.fine_tune(_examples(), epochs=2, seed=0, progress=progress)
    backend.evaluate(trained.model, _examples(3), generate=True, progress=progress)
    assert progress.tasks == {"Fine-tuning": [4, 4], "Scoring": [3, 3], "Generating": [3, 3]}
