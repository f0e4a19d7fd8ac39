"""The causal-LM backend: supervised fine-tuning of a chat/instruction language model.

For prompt → response data. The base is any Hugging Face causal LM (by default the packaged
SmolLM2-135M-Instruct, see :mod:`dataaudit.finetune.models`), trained on response tokens only
through LoRA adapters (or every weight). The prompt is rendered with the model's chat template
when it has one, so training, scoring and generation all see what the model would see in use.

Scores are mean response-token losses, measured teacher-forced; generations are decoded only when
asked, because generation dominates the cost on a CPU. Each training example's loss is
read off the training forward pass itself, so the Dataset Cartography signal costs nothing extra.
The forward passes and generation themselves live in :mod:`dataaudit.finetune.lm_passes`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from contextlib import nullcontext
from typing import Any, Sequence

import numpy as np
import polars as pl

from dataaudit.errors import UsageError
from dataaudit.finetune.base import (
    AfterEpoch,
    Budget,
    Examples,
    FineTuneBackend,
    TrainedModel,
    bucketed_batches,
    evaluation_frame,
    ignore_epoch,
    length_batches,
    resolve_device,
)
from dataaudit.finetune.chat_encoding import (
    EncodedExample,
    chat_messages,
    encode_example,
    log_truncations,
    plain_ids,
    prompt_ids,
    response_ids,
)
from dataaudit.finetune.lm_passes import _generate, response_losses
from dataaudit.finetune.memory import (
    AVAILABLE_SHARE,
    MemoryPlan,
    activation_bytes_per_token,
    available_bytes,
    checkpoint_activations,
    micro_batches,
    plan_memory,
)
from dataaudit.params import Interval, Options
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.runtime import torch_rng_kept, torch_seeded

logger = logging.getLogger(__name__)


_WARMUP_STEPS = 10
_PROBE_NEW_TOKENS = 24
_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
_MAX_GRAD_NORM = 1.0
#: Micro-batch bounds on a CPU, measured on 2 cores with 16 GSM8K rows: two training steps of 8 took
#: 19.4 / 20.3 / 18.4 / 20.2 s at 256 / 512 / 1,024 / 1,536 tokens (no checkpointing; 29.5 s with it,
#: at 256), so wider training passes buy nothing there but memory (2.2 GB peak at 256, 3.8 at 1,024);
#: scoring the 16 took 8.9 / 8.8 / 7.1 / 7.5 s, so passes without gradients go to 1,024.
_CPU_MICRO_BATCH_TOKENS = 256
_CPU_INFERENCE_TOKENS = 1024


def _share(available: int | None) -> int | None:
    return None if available is None else int(available * AVAILABLE_SHARE)


class CausalLMBackend(FineTuneBackend):
    """Fine-tunes a causal language model on prompt → response pairs (loss on the response only).

    ``lora`` (default) trains rank-``lora_rank`` adapters on the attention projections;
    otherwise every weight is trained. ``learning_rate`` defaults to 2e-4 (LoRA) or 2e-5 (full).
    The schedule is a short warm-up then constant, so the model after epoch *e* is the model a
    run of *e* epochs would give (the engine's epoch sweep). ``max_length`` bounds prompt +
    response tokens for training and scoring; few-shot prompts get ``k + 1`` times as much.
    ``probe_questions`` caps the general-knowledge questions answered by :meth:`general_probe`,
    which runs after every epoch.

    ``temperature`` is what the format evidence's generations are sampled at. 1.0 (default) draws
    from the distribution the model learnt, so a 90/10 mix of formats shows as roughly 90/10;
    greedy decoding (0) shows only the mode and hides a minority format however well it was
    learnt. Sampling is seeded, so a run repeats. The general probe always answers greedily.

    ``min_p`` trims the sampling distribution's tail: a token is drawn only when its probability
    is at least ``min_p`` times the most likely token's, and the kept tokens keep their learnt
    relative odds. Sampled at pure temperature 1, 45–66% of a LoRA-tuned SmolLM2-135M's GSM8K
    answers drew a tail token, derailed into noise and ran to the token limit without choosing
    a format at all. A format the model gives one chance in ten beside a 90% favourite (ratio
    0.11) survives the default 0.05. ``min_p=0`` samples the untrimmed distribution.

    ``generation_batch_size`` is separate from the training ``batch_size``: decoding one token
    reads every weight whatever the batch, so a batch of 32 generated 2.2 times as fast as a batch
    of 8 on 2 CPU cores (64 GSM8K prompts, 128 sampled tokens: 60 s vs 133 s), while a training
    step's cost grows with its batch.

    ``dtype`` is fp32 by default. ``"bfloat16"`` is faster (1.6x per LoRA step on an AMX CPU)
    but opt-in: LoRA over bf16 weights diverged to NaN within one epoch of GSM8K on an H200
    (batch 8, lr 2e-4) where fp32 trained cleanly. With ``"bfloat16"``, LoRA keeps the frozen
    weights in bf16 (adapters stay fp32) and full fine-tuning keeps fp32 master weights —
    bf16 would round most of Adam's small updates away — computing in bf16 under autocast on a GPU.

    Memory (:mod:`dataaudit.finetune.memory`): ``gradient_checkpointing`` recomputes activations
    in the backward pass, and no forward pass sees more than ``micro_batch_tokens`` (rows x
    padded width): a larger batch is split and its gradients accumulated, so the optimizer still
    steps once per ``batch_size`` rows with the same gradient. Left at ``None`` (default), both
    are sized from ``memory_budget`` GB for the activations (default: half the memory available
    when the model is first used): checkpointing only when one ``max_length`` row would not fit
    without it — it costs half as much time again per step — and micro-batches up to 256 tokens
    on a CPU (wider training passes were no faster there; scoring passes go to 1,024) or the whole
    batch on a GPU. A step on sample_data's 8 longest rows peaked at 5.5 GB RSS with neither
    lever; two steps of 8 GSM8K rows at 256 tokens peaked at 2.2 GB without checkpointing and
    1.6 GB with it. The plan is in ``memory_plan_`` and the fine-tune summary.
    """

    name = "causal-lm"
    metric = "loss"
    target_column = "response"
    generative = True
    # Scoring a row costs a forward pass over prompt + response, a few-shot row k + 1 times that,
    # and a generation up to max_new_tokens passes: the caps keep the default run to minutes.
    default_budget = Budget(max_examples=300, epochs=2, max_production=100, max_perturbed=50, max_few_shot=50,
                            few_shot_k=2, max_generations=48)
    # On a GPU: past the 1,400 row-epochs the format claim needs (FORMAT_MIN_ROW_EPOCHS; 1,000
    # sampled rows train about 800 after the held-out split, × 2 epochs), scoring caps 3× and
    # twice the generations.
    accelerator_budget = Budget(max_examples=1000, epochs=2, max_production=300, max_perturbed=150, max_few_shot=150,
                                few_shot_k=2, max_generations=96)

    _parameter_constraints = {
        "model": [str, None],
        "lora": [bool],
        "lora_rank": [Interval(int, 1, None)],
        "learning_rate": [Interval(float, 0, None, closed="neither"), None],
        "batch_size": [Interval(int, 1, None)],
        "generation_batch_size": [Interval(int, 1, None)],
        "max_length": [Interval(int, 1, None)],
        "max_new_tokens": [Interval(int, 1, None)],
        "temperature": [Interval(float, 0, None)],
        "min_p": [Interval(float, 0, 1)],
        "device": [str, None],
        "dtype": [Options({"float32", "bfloat16"}), None],
        "probe_questions": [Interval(int, 0, None)],
        "gradient_checkpointing": [bool, None],
        "micro_batch_tokens": [Interval(int, 1, None), None],
        "memory_budget": [Interval(float, 0, None, closed="neither"), None],
    }

    def __init__(self, *, model: str | None = None, lora: bool = True, lora_rank: int = 16,
                 learning_rate: float | None = None, batch_size: int = 8, generation_batch_size: int = 32,
                 max_length: int = 384, max_new_tokens: int = 192, temperature: float = 1.0, min_p: float = 0.05,
                 device: str | None = None, dtype: str | None = None, probe_questions: int = 30,
                 gradient_checkpointing: bool | None = None, micro_batch_tokens: int | None = None,
                 memory_budget: float | None = None):
        self.model = model
        self.lora = lora
        self.lora_rank = lora_rank
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.generation_batch_size = generation_batch_size
        self.max_length = max_length
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.min_p = min_p
        self.device = device
        self.dtype = dtype
        self.probe_questions = probe_questions
        self.gradient_checkpointing = gradient_checkpointing
        self.micro_batch_tokens = micro_batch_tokens
        self.memory_budget = memory_budget

    # -- loading -------------------------------------------------------------------------------
    def base_model(self) -> Any:
        """Load the base model and its tokenizer once, in the weights' dtype on the training device."""
        if getattr(self, "model_", None) is None:
            import torch

            from dataaudit.finetune.models import load_causal_lm

            self.model_, self.tokenizer_ = load_causal_lm(self.model, device=self._device(),
                                                          dtype=getattr(torch, self._weights_dtype()))
        return self.model_

    def _weights_dtype(self) -> str:
        if self.dtype is not None:
            if self.dtype not in ("float32", "bfloat16"):
                raise UsageError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        return "bfloat16" if self.dtype == "bfloat16" and self.lora else "float32"

    def _autocast(self) -> Any:
        """Compute in bf16 over fp32 master weights: full fine-tuning with ``dtype="bfloat16"`` on a GPU."""
        import torch

        if self.dtype == "bfloat16" and not self.lora and self._device().startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def memory_plan(self) -> MemoryPlan:
        """Checkpointing and micro-batch size for this model and machine (``memory_plan_``).

        Chosen once per setting of the parameters it reads, so ``set_params`` does not leave a
        stale plan; the memory available is read when it is chosen.
        """
        key = (self.gradient_checkpointing, self.micro_batch_tokens, self.memory_budget, self.max_length,
               self.batch_size, self._device())
        if getattr(self, "_memory_plan_key", None) != key:
            self.memory_plan_ = None
            self._memory_plan_key = key
        if self.memory_plan_ is None:
            model = self.base_model()
            element = next(model.parameters()).element_size()
            budget = (int(self.memory_budget * 1e9) if self.memory_budget is not None
                      else _share(available_bytes(self._device())))
            on_cpu = self._device() == "cpu"
            whole_batch = self.batch_size * self.max_length
            self.memory_plan_ = plan_memory(
                budget_bytes=budget, longest_tokens=self.max_length,
                preferred_tokens=_CPU_MICRO_BATCH_TOKENS if on_cpu else whole_batch,
                inference_preferred_tokens=_CPU_INFERENCE_TOKENS if on_cpu else whole_batch,
                full_bytes_per_token=activation_bytes_per_token(model.config, checkpointing=False, element_bytes=element),
                checkpointed_bytes_per_token=activation_bytes_per_token(model.config, checkpointing=True,
                                                                       element_bytes=element),
                checkpointing=self.gradient_checkpointing, micro_batch_tokens=self.micro_batch_tokens)
            logger.info("memory plan: %s", self.memory_plan_.summary())
        return self.memory_plan_

    def resources(self) -> dict[str, Any]:
        """The memory plan the run trained and scored under."""
        return {"memory": self.memory_plan().summary()}

    def _micro_batch_tokens(self) -> int:
        return self.memory_plan().micro_batch_tokens

    def _device(self) -> str:
        return resolve_device(self.device)

    def training_device(self) -> str:
        """Name the device type training runs on (``"cuda"``, ``"cpu"``): it picks the budget."""
        return self._device().split(":")[0]

    def _tokenizer(self) -> Any:
        self.base_model()
        return self.tokenizer_

    # -- training ------------------------------------------------------------------------------
    @torch_seeded
    def fine_tune(self, train: Examples, *, epochs: int, seed: int, progress: Progress = NULL_PROGRESS,
                  after_epoch: AfterEpoch = ignore_epoch) -> TrainedModel:
        """Train a fresh copy of the base on the response tokens of ``train``.

        Each example's confidence per epoch is read off the training forward pass itself, so
        the Dataset Cartography signal costs no extra pass; ``after_epoch`` time is not counted
        in ``seconds``.
        """
        import torch

        if any(target is None for target in train.targets):
            raise ValueError("every training example needs a target response")
        started = time.perf_counter()
        model = self._fresh_model()
        encoded = self._encode(train.prompts, train.systems, train.targets, max_length=self.max_length)
        lengths = np.array([len(e.input_ids) for e in encoded])
        trainable = [p for p in model.parameters() if p.requires_grad]
        rate = self.learning_rate if self.learning_rate is not None else (2e-4 if self.lora else 2e-5)
        optimizer = torch.optim.AdamW(trainable, lr=rate, weight_decay=0.0)
        batches_per_epoch = -(-len(train) // self.batch_size)
        warmup = max(1, min(_WARMUP_STEPS, batches_per_epoch))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        confidence = np.full((epochs, len(train)), np.nan)
        epoch_losses: list[float] = []
        generator = np.random.default_rng(seed)
        steps = 0
        callbacks = 0.0
        with progress.task("Fine-tuning", total=epochs * batches_per_epoch) as task:
            for epoch in range(epochs):
                model.train()
                for batch in bucketed_batches(lengths, self.batch_size, generator):
                    optimizer.zero_grad(set_to_none=True)
                    # One optimizer step per batch; its micro-batches' gradients add up to the batch's.
                    scored = max(sum(encoded[i].scored_tokens for i in batch), 1)
                    for part in micro_batches(lengths[batch], self._micro_batch_tokens()):
                        rows = batch[part]
                        with self._autocast():
                            summed, counts = response_losses(model, [encoded[i] for i in rows])
                        (summed.sum() / scored).backward()
                        per_example = (summed.detach() / counts.clamp(min=1)).float().cpu().numpy()
                        confidence[epoch, rows] = np.exp(-per_example)
                    torch.nn.utils.clip_grad_norm_(trainable, _MAX_GRAD_NORM)
                    optimizer.step()
                    scheduler.step()
                    steps += 1
                    task.advance(1)
                epoch_losses.append(float(np.mean(-np.log(confidence[epoch]))) if len(train) else float("nan"))
                model.eval()
                clock = time.perf_counter()
                with torch_rng_kept():
                    after_epoch(epoch, model)
                callbacks += time.perf_counter() - clock
        model.eval()
        return TrainedModel(model=model, confidence=confidence, epoch_losses=epoch_losses,
                            seconds=time.perf_counter() - started - callbacks, steps=steps)

    def _fresh_model(self) -> Any:
        """Copy the base for training.

        LoRA copies share the frozen base weights (they are never written), so each fine-tune
        costs only its adapters in memory.
        """
        base = self.base_model()
        if not self.lora:
            model = copy.deepcopy(base)
            model.requires_grad_(True)
            if self.memory_plan().checkpointing:
                checkpoint_activations(model)
            return model
        from peft import LoraConfig, get_peft_model

        model = copy.deepcopy(base, memo={id(p): p for p in base.parameters()})
        if self.memory_plan().checkpointing:
            checkpoint_activations(model)
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        targets = [t for t in _LORA_TARGETS if t in present] or None  # None: peft's per-architecture default
        config = LoraConfig(r=self.lora_rank, lora_alpha=2 * self.lora_rank, lora_dropout=0.0,
                            target_modules=targets, task_type="CAUSAL_LM")
        with warnings.catch_warnings():  # peft calls transformers APIs that transformers deprecated
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, config)

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, model: Any, examples: Examples, *, generate: bool = False,
                 progress: Progress = NULL_PROGRESS) -> pl.DataFrame:
        """Score ``examples`` with ``model``: teacher-forced response loss, and generations when ``generate``."""
        tokenizer = self._tokenizer()
        prompts = [prompt_ids(tokenizer, chat_messages(p, s)) for p, s in zip(examples.prompts, examples.systems)]
        return self._score(model, examples, prompts, max_length=self.max_length, generate=generate, progress=progress)

    def few_shot(self, train: Examples, examples: Examples, *, k: int, seed: int, generate: bool = False,
                 progress: Progress = NULL_PROGRESS) -> pl.DataFrame:
        """Score the base model with the ``k`` training examples most similar to each prompt as earlier turns.

        Similarity is TF-IDF cosine; the most similar demonstration comes last. The farthest
        demonstrations are dropped when the prompt would not fit ``max_length * (k + 1)`` tokens
        with its reference.
        """
        tokenizer = self._tokenizer()
        labelled = [i for i, t in enumerate(train.targets) if t is not None]
        neighbours = _nearest_prompts([train.prompts[i] for i in labelled], examples.prompts, k=k, seed=seed)
        budget = self.max_length * (max(k, 0) + 1)
        limit = getattr(self.model_.config, "max_position_embeddings", None)
        if isinstance(limit, int) and limit > 0:
            budget = min(budget, limit)
        prompts: list[list[int]] = []
        dropped = 0
        for i, (prompt, system, target) in enumerate(zip(examples.prompts, examples.systems, examples.targets)):
            shots = [(train.prompts[labelled[j]], train.targets[labelled[j]]) for j in neighbours[i]]
            response = len(response_ids(tokenizer, target)) if target is not None else self.max_new_tokens
            while True:
                ids = prompt_ids(tokenizer, chat_messages(prompt, system, shots))
                if not shots or len(ids) + response <= budget:
                    break
                shots = shots[1:]
                dropped += 1
            prompts.append(ids)
        if dropped:
            logger.info("few-shot: dropped %d demonstration(s) that did not fit %d tokens", dropped, budget)
        return self._score(self.base_model(), examples, prompts, max_length=budget, generate=generate,
                           progress=progress)

    def general_probe(self, model: Any) -> dict[str, Any]:
        """Measure what narrow fine-tuning tends to erode.

        Perplexity on the packaged general passages (plain text) and exact answers to the first
        ``probe_questions`` general questions. ``score`` is exp(−mean token loss); ``items`` holds
        it per passage, for a paired test.
        """
        import torch

        from dataaudit.finetune import probes

        tokenizer = self._tokenizer()
        passages = probes.general_passages()
        token_ids = [ids for ids in (plain_ids(tokenizer, passage) for passage in passages) if len(ids) > 1]
        encoded = [encode_example(ids[:1], ids[1:], max_length=self.max_length) for ids in token_ids]
        sums, counts = np.zeros(len(encoded)), np.zeros(len(encoded))
        with torch.inference_mode(), self._autocast():
            for batch in self.inference_batches([len(e.input_ids) for e in encoded]):
                summed, counted = response_losses(model, [encoded[i] for i in batch])
                sums[batch], counts[batch] = summed.float().cpu().numpy(), counted.cpu().numpy()
        mean_loss = float(sums.sum() / max(counts.sum(), 1))
        questions = probes.general_questions()[: max(self.probe_questions, 0)]
        with self._autocast():
            answers, _ = _generate(model, tokenizer, [prompt_ids(tokenizer, chat_messages(q, None)) for q, _ in questions],
                                max_new_tokens=_PROBE_NEW_TOKENS, batch_size=self.batch_size)
        matched = [probes.answer_matches(answer, accepted) for answer, (_, accepted) in zip(answers, questions)]
        return {
            "score": math.exp(-mean_loss),
            "perplexity": math.exp(mean_loss),
            "general_qa_accuracy": float(np.mean(matched)) if matched else float("nan"),
            "items": [float(x) for x in np.exp(-sums / np.maximum(counts, 1))],
        }

    def _score(self, model: Any, examples: Examples, prompts: list[list[int]], *, max_length: int, generate: bool,
               progress: Progress) -> pl.DataFrame:
        """Compute the teacher-forced mean response-token loss per example (NaN without a target).

        With ``generate``, also the generations (sampled at ``temperature``) and their
        final-answer correctness.
        """
        import torch

        from dataaudit.features.answers import extract_final_answer

        tokenizer = self._tokenizer()
        scored = [i for i, target in enumerate(examples.targets) if target is not None]
        encoded = {i: encode_example(prompts[i], response_ids(tokenizer, examples.targets[i]), max_length=max_length)
                   for i in scored}
        log_truncations(sum(e.truncated for e in encoded.values()), len(encoded), max_length)
        loss = np.full(len(examples), np.nan)
        with torch.inference_mode(), self._autocast(), progress.task("Scoring", total=len(scored)) as task:
            for batch in self.inference_batches([len(encoded[i].input_ids) for i in scored]):
                rows = [scored[b] for b in batch]
                summed, counts = response_losses(model, [encoded[i] for i in rows])
                loss[rows] = (summed / counts.clamp(min=1)).float().cpu().numpy()
                task.advance(len(rows))
        outputs: list[str | None] = [None] * len(examples)
        complete: list[bool | None] = [None] * len(examples)
        correct = np.full(len(examples), np.nan)
        if generate:
            with self._autocast():
                outputs, complete = _generate(model, tokenizer, [p[-max_length:] for p in prompts],
                                    max_new_tokens=self.max_new_tokens, batch_size=self.generation_batch_size,
                                    temperature=self.temperature, min_p=self.min_p, progress=progress)
            for i, (output, target) in enumerate(zip(outputs, examples.targets)):
                reference = extract_final_answer(target)
                if reference is not None:
                    correct[i] = float(extract_final_answer(output, last_number_fallback=True) == reference)
        return evaluation_frame(examples.rows, loss, correct, outputs, complete)

    def inference_batches(self, lengths: Sequence[int]) -> list[np.ndarray]:
        """Batch rows longest first, ``batch_size`` at a time, each split to the plan's inference bound.

        A row's scores do not depend on its batch mates, so the split changes only memory.
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        return [batch[part] for batch in length_batches(lengths, self.batch_size, longest_first=True)
                for part in micro_batches(lengths[batch], self.memory_plan().inference_tokens)]

    def _encode(self, prompts: Sequence[str], systems: Sequence[str | None], targets: Sequence[str | None], *,
                max_length: int) -> list[EncodedExample]:
        """Tokenise prompt (chat template) and response into training examples, logging truncations."""
        tokenizer = self._tokenizer()
        encoded = [encode_example(prompt_ids(tokenizer, chat_messages(p, s)), response_ids(tokenizer, t),
                                  max_length=max_length)
                   for p, s, t in zip(prompts, systems, targets)]
        log_truncations(sum(e.truncated for e in encoded), len(encoded), max_length)
        return encoded


# -- few-shot retrieval --------------------------------------------------------------------------
def _nearest_prompts(train_prompts: Sequence[str], prompts: Sequence[str], *, k: int, seed: int) -> list[np.ndarray]:
    """Find, for each prompt, up to ``k`` training positions by TF-IDF cosine, least similar first.

    Ties (e.g. no shared words) are broken by a seeded shuffle, so a run repeats.
    """
    if k <= 0 or not train_prompts:
        return [np.zeros(0, dtype=np.int64) for _ in prompts]
    from sklearn.feature_extraction.text import TfidfVectorizer

    tiebreak = np.random.default_rng(seed).permutation(len(train_prompts))
    try:
        vectorizer = TfidfVectorizer(sublinear_tf=True).fit(train_prompts)
        similarity = (vectorizer.transform(prompts) @ vectorizer.transform(train_prompts).T).toarray()
    except ValueError:  # empty vocabulary: prompts with no words at all
        similarity = np.zeros((len(prompts), len(train_prompts)))
    chosen = []
    for row in similarity:
        best = np.lexsort((tiebreak, -row))[:k]
        chosen.append(best[::-1].copy())
    return chosen
