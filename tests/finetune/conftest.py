"""Fixtures for the fine-tune tests: a tiny causal LM built offline, no hub, no real weights."""

from __future__ import annotations

import sys
import types

import pytest

#: Texts the tiny tokenizer is trained on (byte-level BPE, so any other text still encodes).
TINY_CORPUS = [
    "What is two plus two? The answer is 4.",
    "Name the capital of France. Paris is the capital of France.",
    "Translate cat to French. chat",
    "Is the sky blue? yes",
    "How many legs does a spider have? 8",
    "Write a haiku about rain. Soft rain on the roof, the garden drinks in silence, clouds drift far away.",
    "The quick brown fox jumps over the lazy dog.",
    "Water boils at one hundred degrees Celsius at sea level.",
]

TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> str:
    """A folder holding a randomly initialised 2-layer Llama (SmolLM2's architecture, ~50k
    parameters) and a byte-level BPE tokenizer with a chat template; pass it as ``model=``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-causal-lm")
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TINY_CORPUS, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>",
                                      bos_token="<s>", eos_token="</s>")
    wrapped.chat_template = TINY_CHAT_TEMPLATE
    wrapped.save_pretrained(directory)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         pad_token_id=wrapped.pad_token_id, bos_token_id=wrapped.bos_token_id,
                         eos_token_id=wrapped.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    return str(directory)


@pytest.fixture
def fake_probes(monkeypatch):
    """A stand-in for :mod:`dataaudit.finetune.probes` with a handful of items."""
    import dataaudit.finetune as package

    module = types.ModuleType("dataaudit.finetune.probes")
    module.general_passages = lambda: TINY_CORPUS[4:]
    module.general_questions = lambda: [("What is two plus two?", ("4", "four")), ("Is the sky blue?", ("yes",))]
    module.answer_matches = lambda generation, accepted: any(a in generation.lower() for a in accepted)
    monkeypatch.setitem(sys.modules, "dataaudit.finetune.probes", module)
    monkeypatch.setattr(package, "probes", module, raising=False)
    return module
