"""The encoder backend on the real MiniLM: small, but a real fine-tune of a real network."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dataaudit.finetune.base import EVALUATION_SCHEMA, Examples
from dataaudit.finetune.encoder import EncoderBackend

pytestmark = pytest.mark.slow

INTENTS = {
    "card_arrival": ["When will my new card arrive?", "My card still has not come in the post", "How long does card delivery take?",
                     "I am still waiting for my card", "Has my card been sent yet?", "Where is the card you mailed me?"],
    "exchange_rate": ["What exchange rate do you use?", "How much is one euro in dollars today?", "Is your currency rate fair?",
                      "Which rate applies when I convert pounds?", "Do you add a margin to the exchange rate?", "Show me today's FX rate"],
    "lost_card": ["I lost my card", "My card was stolen yesterday", "I can't find my debit card anywhere",
                  "Someone took my wallet with the card", "Please block my missing card", "What do I do if my card is lost?"],
}


def _examples(offset: int = 0) -> Examples:
    prompts = [p for items in INTENTS.values() for p in items]
    labels = [label for label, items in INTENTS.items() for _ in items]
    return Examples(rows=np.arange(len(prompts)) + offset, prompts=prompts, targets=labels)


@pytest.fixture(scope="module")
def backend() -> EncoderBackend:
    return EncoderBackend(batch_size=8, device="cpu")


@pytest.fixture(scope="module")
def trained(backend):
    epochs_seen = []
    trained = backend.fine_tune(_examples(), epochs=4, seed=0, after_epoch=lambda e, m: epochs_seen.append(e))
    return trained, epochs_seen


def test_fine_tune_learns_the_training_labels(backend, trained):
    model, epochs_seen = trained
    assert epochs_seen == [0, 1, 2, 3]
    assert model.confidence.shape == (4, 18)
    assert np.all((model.confidence > 0) & (model.confidence <= 1))
    assert model.confidence[-1].mean() > model.confidence[0].mean()
    assert model.epoch_losses[-1] < model.epoch_losses[0]
    frame = backend.evaluate(model.model, _examples())
    assert frame.schema == pl.Schema(EVALUATION_SCHEMA)
    assert frame.get_column("correct").mean() >= 0.9


def test_margins_are_recorded_for_the_area_under_the_margin(trained):
    """AUM's margin: the given label's logit minus the best other; positive exactly when the given
    label is the most probable (confidence above every other class, so above 1/2 suffices)."""
    model, _ = trained
    assert model.margin is not None and model.margin.shape == model.confidence.shape
    assert np.isfinite(model.margin).all()
    assert (model.margin[model.confidence > 0.5] > 0).all()
    assert model.margin[-1].mean() > model.margin[0].mean()


def test_unseen_and_missing_labels(backend, trained):
    model, _ = trained
    examples = Examples(rows=np.array([7, 8]), prompts=["my card never arrived", "hello"], targets=["card_arrival_typo", None])
    frame = backend.evaluate(model.model, examples)
    assert frame.get_column("correct").to_list()[0] == 0.0
    assert np.isnan(frame.get_column("loss").to_list()[0])
    assert np.isnan(frame.get_column("correct").to_list()[1])


def test_base_model_is_untouched_by_fine_tuning(backend, trained):
    base = backend.base_model()
    before = backend.embed(base, ["When will my new card arrive?"])
    model, _ = trained
    after = backend.embed(model.model.encoder, ["When will my new card arrive?"])
    assert np.allclose(before, backend.embed(backend.base_model(), ["When will my new card arrive?"]))
    assert not np.allclose(before, after)


def test_few_shot_nearest_centroid(backend):
    frame = backend.few_shot(_examples(), _examples(offset=100), k=3, seed=0)
    assert frame.get_column("correct").mean() >= 0.8
    assert frame.get_column("row").min() == 100


def test_general_probe_scores_paraphrase_retrieval(backend):
    probe = backend.general_probe(backend.base_model())
    assert 0.5 < probe["score"] <= 1.0
    assert probe["score"] == probe["recall_at_1"]


def test_lora_trains_adapters_only():
    backend = EncoderBackend(lora=True, batch_size=8, device="cpu")
    model = backend.fine_tune(_examples(), epochs=1, seed=0)
    trainable = [name for name, p in model.model.encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in name for name in trainable)


def test_same_seed_same_dynamics(backend):
    first = backend.fine_tune(_examples(), epochs=1, seed=3)
    second = backend.fine_tune(_examples(), epochs=1, seed=3)
    assert np.allclose(first.confidence, second.confidence, atol=1e-5)
