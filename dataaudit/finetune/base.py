"""What the confirmation engine needs from a model family, and the data it passes around.

A backend knows how to fine-tune one kind of model and score examples with it; the engine
(:mod:`dataaudit.finetune.engine`) decides which experiments to run and what they prove. Both
backends fill the same evaluation frame, so every confirmation rule works on either:

``row``      the example's row (training or production row id)
``loss``     the model's loss on the example's target (cross-entropy of the label, or mean
             response-token loss); lower is better
``correct``  1.0 / 0.0 when right or wrong is decidable (predicted label, extracted final
             answer), NaN when it is not
``output``   what the model produced (predicted label or greedy generation); null when the
             backend was not asked to generate for that row
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import polars as pl

from dataaudit.params import Component
from dataaudit.progress import NULL_PROGRESS, Progress

#: Training batches are formed inside random chunks of this many batches, sorted by length:
#: little padding, yet different batch mates every epoch.
BUCKET_BATCHES = 16

#: ``complete`` is false for a generation cut off at the token limit (it never reached its final
#: line, so it has no format) and null where nothing was generated or the backend cannot tell.
EVALUATION_SCHEMA = {"row": pl.Int64, "loss": pl.Float64, "correct": pl.Float64, "output": pl.String,
                     "complete": pl.Boolean}


@dataclass(frozen=True)
class Examples:
    """Row-aligned inputs and targets; ``targets[i] is None`` means no reference is known."""

    rows: np.ndarray
    prompts: list[str]
    targets: list[str | None]
    systems: list[str | None] = field(default_factory=list)

    def __post_init__(self):
        if not self.systems:
            object.__setattr__(self, "systems", [None] * len(self.prompts))
        if not (len(self.rows) == len(self.prompts) == len(self.targets) == len(self.systems)):
            raise ValueError("Examples fields must have the same length")

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, positions: Sequence[int] | np.ndarray) -> "Examples":
        positions = np.asarray(positions, dtype=np.int64)
        return Examples(
            rows=np.asarray(self.rows)[positions],
            prompts=[self.prompts[i] for i in positions],
            targets=[self.targets[i] for i in positions],
            systems=[self.systems[i] for i in positions],
        )

    def with_prompts(self, prompts: list[str]) -> "Examples":
        return Examples(rows=self.rows, prompts=prompts, targets=self.targets, systems=self.systems)

    def with_targets(self, targets: list[str | None]) -> "Examples":
        return Examples(rows=self.rows, prompts=self.prompts, targets=targets, systems=self.systems)


@dataclass
class TrainedModel:
    """A fine-tuned model plus what training observed.

    ``confidence[e, i]`` is the model's confidence in training example ``i``'s own target during
    epoch ``e`` (probability of the given label, or exp(-mean response-token loss)): the input to
    Dataset Cartography. ``margin[e, i]`` (classifiers only, else None) is the given label's logit
    minus the largest other logit: its mean over epochs is the area under the margin (AUM, Pleiss
    et al. 2020), negative for a row the model keeps assigning to another class. ``seconds`` is
    training time, ``after_epoch`` callbacks excluded. ``model`` is backend-specific and only
    handed back to the backend.
    """

    model: Any
    confidence: np.ndarray
    epoch_losses: list[float]
    seconds: float
    steps: int
    margin: np.ndarray | None = None


AfterEpoch = Callable[[int, Any], None]


def ignore_epoch(epoch: int, model: Any) -> None:
    return None


@dataclass(frozen=True)
class Budget:
    """How much a reference run trains and scores when ``finetune()`` or the CLI is told nothing,
    per backend: a language model scores each row with a pass over prompt and response and
    generates token by token, so its caps are smaller. ``ReferenceFineTune`` takes the same
    names as parameters."""

    max_examples: int
    epochs: int
    max_production: int = 1000
    max_perturbed: int = 300
    max_few_shot: int = 300
    few_shot_k: int = 8
    max_generations: int = 48


class FineTuneBackend(Component, ABC):
    """One model family. Subclasses store keyword-only parameters; methods compute.

    ``metric`` names the headline number the engine compares (``"accuracy"``: mean of
    ``correct``, higher is better; ``"loss"``: mean of ``loss``, lower is better).
    """

    name: ClassVar[str]
    metric: ClassVar[str]
    #: The canonical column trained towards (falls back to ``response`` when it is empty).
    target_column: ClassVar[str] = "response"
    #: Whether ``evaluate(generate=True)`` produces free text worth classifying by format.
    generative: ClassVar[bool] = True
    #: What a run trains and scores when the caller says nothing: minutes on 2 CPU cores.
    default_budget: ClassVar[Budget] = Budget(max_examples=2000, epochs=3)
    #: The same on an accelerator, where more rows cost seconds: sized so that every claim is
    #: measurable (a CPU run of a small model may say "budget too small").
    accelerator_budget: ClassVar[Budget] = default_budget

    def training_device(self) -> str:
        """Where :meth:`fine_tune` trains: ``"cpu"`` unless a backend knows better."""
        return "cpu"

    def budget(self) -> Budget:
        """The budget a run gets when the caller says nothing, for the device it trains on."""
        return self.default_budget if self.training_device() == "cpu" else self.accelerator_budget

    @abstractmethod
    def fine_tune(self, train: Examples, *, epochs: int, seed: int, progress: Progress = NULL_PROGRESS,
                  after_epoch: AfterEpoch = ignore_epoch) -> TrainedModel:
        """Fine-tune a fresh copy of the base model; ``after_epoch(e, model)`` runs after each epoch."""

    @abstractmethod
    def base_model(self) -> Any:
        """The untouched base model (what few-shot and the forgetting baseline use)."""

    @abstractmethod
    def evaluate(self, model: Any, examples: Examples, *, generate: bool = False,
                 progress: Progress = NULL_PROGRESS) -> pl.DataFrame:
        """Score ``examples`` with ``model``: a frame with :data:`EVALUATION_SCHEMA`."""

    @abstractmethod
    def few_shot(self, train: Examples, examples: Examples, *, k: int, seed: int, generate: bool = False,
                 progress: Progress = NULL_PROGRESS) -> pl.DataFrame:
        """The base model with no fine-tuning, helped by ``k`` training examples; same frame."""

    @abstractmethod
    def general_probe(self, model: Any) -> dict[str, float]:
        """General ability on the packaged probe; must include ``"score"`` (higher is better)."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "metric": self.metric, **self.get_params()}

    def resources(self) -> dict[str, Any]:
        """How the run fitted the machine (e.g. the memory plan), for the summary; nothing by default."""
        return {}


def resolve_device(device: str | None) -> str:
    """``device`` as given, else CUDA when torch sees a GPU, else the CPU."""
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bucketed_batches(lengths: np.ndarray, batch_size: int, generator: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: sorted inside random chunks, chunks' batches shuffled."""
    order = generator.permutation(len(lengths))
    chunk = batch_size * BUCKET_BATCHES
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in generator.permutation(len(batches))]


def length_batches(lengths: Sequence[int], batch_size: int, *, longest_first: bool) -> list[np.ndarray]:
    """Positions in batches of similar length (less padding). Longest first puts the memory
    peak up front, where a too-large batch fails at once; shortest first suits inference whose
    batches are all small."""
    keys = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-keys if longest_first else keys, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def empty_evaluation() -> pl.DataFrame:
    return pl.DataFrame(schema=EVALUATION_SCHEMA)


def evaluation_frame(rows: np.ndarray, loss: Sequence[float], correct: Sequence[float],
                     output: Sequence[str | None], complete: Sequence[bool | None] = ()) -> pl.DataFrame:
    return pl.DataFrame(
        {"row": np.asarray(rows, dtype=np.int64), "loss": np.asarray(loss, dtype=np.float64),
         "correct": np.asarray(correct, dtype=np.float64), "output": list(output),
         "complete": list(complete) or [None] * len(output)},
        schema=EVALUATION_SCHEMA,
    )
