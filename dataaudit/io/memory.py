"""Data that is not a file: data frames, ``datasets`` objects, lists of dicts, hub names.

Notebook users hold a polars or pandas frame or a ``datasets.Dataset``; each becomes the
same raw records a file would give (row ``i`` is line ``i + 1``), so format detection, field
mapping and every result are the same as for the data written to JSONL or Parquet.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from dataaudit.errors import InputError, UsageError

HUB_PREFIX = "hf:"


def is_in_memory(data: Any) -> bool:
    return not isinstance(data, (str, os.PathLike))


def table_of(data: Any):
    """A polars frame of an in-memory table, or None for a list of records."""
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return pl.from_pandas(data.reset_index(drop=True))
    datasets = sys.modules.get("datasets")
    if datasets is not None:
        if isinstance(data, datasets.DatasetDict):
            data = _one_split(data, name="the DatasetDict")
        if isinstance(data, datasets.IterableDataset):
            raise UsageError("an IterableDataset streams without an end; pass a datasets.Dataset (e.g. take(n) then "
                             "Dataset.from_generator), or save it to disk")
        if isinstance(data, datasets.Dataset):
            # with_format("arrow")[:] honours an indices mapping (after select/shuffle/filter).
            return pl.from_arrow(data.with_format("arrow")[:])
    if isinstance(data, (list, tuple)):
        return None
    raise UsageError(f"cannot audit a {type(data).__name__}: pass a path, a polars or pandas DataFrame, "
                     "a datasets.Dataset, or a list of dicts")


def _one_split(dataset_dict, *, name: str):
    splits = list(dataset_dict)
    if len(splits) == 1:
        return dataset_dict[splits[0]]
    if "train" in splits:
        return dataset_dict["train"]
    raise UsageError(f"{name} has splits {', '.join(splits)}: pass one of them (e.g. data[{splits[0]!r}])")


def parse_hub_name(spec: str) -> tuple[str, str | None]:
    """``hf:ORG/NAME[:SPLIT]`` → (``ORG/NAME``, split or None)."""
    name, _, split = spec[len(HUB_PREFIX):].partition(":")
    if not name:
        raise UsageError(f"{spec!r}: expected hf:ORG/NAME or hf:ORG/NAME:SPLIT")
    return name, split or None


@contextmanager
def hub_offline() -> Iterator[None]:
    """Hub access from the local cache only, for the duration: an audit never waits on the network.

    ``datasets`` and ``huggingface_hub`` read their offline switches at import time, so the
    environment variables are set (for a first import) and their module constants too (for a
    library a notebook imported earlier); all are restored afterwards.
    """
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    saved_env = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    patched = []
    for module_name, attributes in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                                    ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
        module = sys.modules.get(module_name)
        for attribute in attributes:
            if module is not None and hasattr(module, attribute):
                patched.append((module, attribute, getattr(module, attribute)))
                setattr(module, attribute, True)
    try:
        yield
    finally:
        for module, attribute, value in patched:
            setattr(module, attribute, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_hub_table(spec: str):
    """A hub dataset (``hf:ORG/NAME[:SPLIT]``) from the local Hugging Face cache, as a polars frame.

    dataaudit never downloads: with no local copy the error is one line saying so.
    """
    name, split = parse_hub_name(spec)
    with hub_offline():
        try:
            import datasets
        except ImportError:
            raise UsageError(f"{spec}: hub names need the optional package 'datasets' "
                             "(pip install 'dataaudit[hf]')") from None
        try:
            loaded = datasets.load_dataset(name, split=split)
        except Exception as error:  # datasets raises many types (ConnectionError, FileNotFoundError, ValueError …)
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise InputError(f"not available offline: no local copy of {name}"
                             f"{'' if split is None else f' (split {split})'} in the Hugging Face cache, and "
                             f"dataaudit does not download. Fetch it once where there is network "
                             f"(datasets.load_dataset({name!r})) or pass a local path. [{type(error).__name__}: {detail}]",
                             path=spec) from None
        if isinstance(loaded, datasets.DatasetDict):
            loaded = _one_split(loaded, name=spec)
        return table_of(loaded)
