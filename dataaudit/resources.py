"""Memory check before an audit: a clear message instead of an out-of-memory kill.

The audit's big allocations grow with the row count: the embedding matrices (one per
view), the kNN graphs, UMAP's neighbour graph, the label classifier's probabilities and
the per-row text work of the checks. :func:`estimate_audit_memory` adds these up from
numbers known before anything is allocated; :func:`check_audit_memory` compares the sum
with the memory this process may still use (``MemAvailable``, or the cgroup limit when it
is lower) and raises :class:`~dataaudit.errors.ResourceError` when it does not fit.

``DATAAUDIT_MEMORY_LIMIT`` overrides the detected budget: bytes (``8000000000``), a size
(``512MB``, ``8GiB``) or ``off`` to skip the check.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from dataaudit.errors import ResourceError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from dataaudit.dataset import Dataset

logger = logging.getLogger(__name__)

#: Environment variable that overrides the detected memory budget.
MEMORY_LIMIT_ENV = "DATAAUDIT_MEMORY_LIMIT"
#: Vector size assumed when neither the embedder nor precomputed vectors tell (all-MiniLM-L6-v2).
DEFAULT_DIM = 384
#: torch, a sentence-transformers model and one batch of activations (MiniLM measured 680 MB).
MODEL_BYTES = 700 << 20
#: Per-row working memory of clustering and checks beyond the matrices counted separately
#: (UMAP's fuzzy graph, HDBSCAN trees, Python objects per row). Peak RSS measured 145 MB,
#: 453 MB, 924 MB for 2,000, 6,000, 23,700 CLINC150 rows and 297 MB for 4,000 GSM8K rows
#: (with a production sample of a fifth); these constants over-estimate those by 1.3-2x.
ROW_OVERHEAD_BYTES = 10_000
#: Rows the clustering is fitted on at most (``ClusterPipeline(max_fit_rows=...)``'s default): past
#: it UMAP's graph and HDBSCAN's trees stop growing, and the other rows are only placed.
FITTED_ROWS = 50_000
#: Working memory per placed row (labels, coordinates, the checks' per-row state, now kept in
#: digests and row blocks). Recalibrated on ``bench/bench_scale.py precomputed`` (hashing
#: vectors, with responses, 1% production): peaks of 2.04, 2.89 and 9.77 GB at 100k, 200k and
#: 1M rows, which this estimate exceeds by 22%, 24% and 26% (before: 15%, 33% and 61%).
PLACED_ROW_BYTES = 1_000
#: Copies of the input text the checks hold at once (lists of prompts, normalised texts, shingles).
TEXT_COPIES = 12
#: The exact kNN search works in blocks of about this many bytes (256 MB in dataaudit.neighbors,
#: plus the sorting temporaries).
KNN_BLOCK_BYTES = 300 << 20
#: Above this many rows the kNN graph is approximate (pynndescent), which needs more per row.
APPROXIMATE_KNN_ROWS = 20_000
#: Fixed cost of starting the pipeline (numba-compiled UMAP and pynndescent, scikit-learn,
#: polars buffers, the length check's tokenizer and the language check's model): a 3,000-row
#: audit with precomputed vectors peaks at 0.94 GB.
BASE_BYTES = 700 << 20
#: Resident bytes per kNN edge while pynndescent builds a graph (its heaps and candidate lists
#: beside the finished int64 index and float32 similarity), in units of a finished edge's 12.
APPROXIMATE_KNN_FACTOR = 3

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNLIMITED = {"off", "none", "unlimited", "no"}


@dataclass(frozen=True)
class MemoryEstimate:
    """Extra memory an audit is expected to need at its peak, in bytes, part by part."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def largest(self, count: int = 3) -> list[tuple[str, int]]:
        return sorted(self.parts.items(), key=lambda item: -item[1])[:count]


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes this process may still allocate, and where that number came from."""

    available: int | None  # None: unknown or unlimited; the check is skipped
    source: str


def estimate_audit_memory(
    *,
    rows: int,
    dim: int = DEFAULT_DIM,
    knn_k: int = 30,
    production_rows: int = 0,
    text_bytes: int = 0,
    classes: int = 0,
    responses: bool = True,
    load_model: bool = True,
) -> MemoryEstimate:
    """Peak extra memory of an audit of ``rows`` rows, before any of it is allocated.

    ``text_bytes`` is the size of the prompts and responses, ``classes`` the number of
    distinct labels (the conflict check's classifier keeps a probability per row and class),
    ``responses`` whether response and prompt+response views get embedded too, and
    ``load_model`` whether an embedding model will be loaded (not with precomputed or
    hashed vectors). Deliberately on the high side: an estimate that is too low is what
    ends in the kill this check exists to prevent.
    """
    rows, production_rows = max(0, rows), max(0, production_rows)
    views = 3 if responses else 1
    k = max(0, min(knn_k, rows - 1))
    # Each view's matrix, plus a second copy while the view is being computed/normalised.
    parts = {"embeddings": (views + 1) * rows * dim * 4}
    knn_row_bytes = k * 12 * (APPROXIMATE_KNN_FACTOR if rows > APPROXIMATE_KNN_ROWS else 1)
    graphs = 2 if responses else 1  # the prompt graph, and the prompt+response one for duplicates
    parts["knn_graphs"] = graphs * rows * knn_row_bytes + min(KNN_BLOCK_BYTES, rows * rows * 12)
    parts["clustering_and_checks"] = (min(rows, FITTED_ROWS) * ROW_OVERHEAD_BYTES
                                      + max(0, rows - FITTED_ROWS) * PLACED_ROW_BYTES)
    parts["texts"] = TEXT_COPIES * text_bytes
    if classes > 1:
        # one rows × classes matrix, one fold's answer beside it, softmax blocks
        parts["label_classifier"] = int(1.5 * rows * classes * 8) + dim * dim * 8
    if production_rows:
        parts["production"] = production_rows * (2 * dim * 4 + k * 12 + ROW_OVERHEAD_BYTES)
    if load_model:
        parts["embedding_model"] = MODEL_BYTES
    parts["base"] = BASE_BYTES
    return MemoryEstimate(parts=parts)


def parse_size(text: str) -> int | None:
    """``"8GB"`` → 8000000000, ``"512MiB"`` → 536870912, ``"off"`` → None (no limit)."""
    value = text.strip()
    if value.lower() in _UNLIMITED:
        return None
    match = _SIZE.match(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"{MEMORY_LIMIT_ENV}={text!r} is not a size; use bytes, a size like 512MB or 8GiB, or 'off'"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def available_memory(
    *,
    environ: Mapping[str, str] | None = None,
    proc: str | os.PathLike = "/proc",
    cgroup: str | os.PathLike = "/sys/fs/cgroup",
) -> MemoryBudget:
    """What this process may still allocate: the override, else the lowest of the system's
    available memory and the cgroup's (container's) remaining limit."""
    environ = os.environ if environ is None else environ
    override = environ.get(MEMORY_LIMIT_ENV, "").strip()
    if override:
        return MemoryBudget(available=parse_size(override), source=MEMORY_LIMIT_ENV)
    candidates = [
        (_meminfo_available(Path(proc) / "meminfo"), "available system memory"),
        (_cgroup_remaining(Path(proc), Path(cgroup)), "container (cgroup) memory limit"),
    ]
    known = [(amount, source) for amount, source in candidates if amount is not None]
    if not known:
        amount = _sysconf_available()
        return MemoryBudget(available=amount, source="available system memory" if amount else "unknown")
    amount, source = min(known)
    return MemoryBudget(available=amount, source=source)


def check_memory(estimate: MemoryEstimate, budget: MemoryBudget, *, what: str = "this audit") -> None:
    """Raise :class:`ResourceError` when ``estimate`` does not fit in ``budget``."""
    if budget.available is None:
        logger.debug("memory check skipped (%s); estimate %s", budget.source, format_bytes(estimate.total))
        return
    logger.info("memory: %s estimated, %s available (%s)", format_bytes(estimate.total),
                format_bytes(budget.available), budget.source)
    if estimate.total <= budget.available:
        return
    biggest = ", ".join(f"{name.replace('_', ' ')} {format_bytes(size)}" for name, size in estimate.largest())
    raise ResourceError(
        f"not enough memory for {what}: it needs about {format_bytes(estimate.total)} (mostly {biggest}) "
        f"but only {format_bytes(budget.available)} is available ({budget.source}). "
        f"Audit a sample of the rows, use a machine with more memory, or, if the estimate is too cautious, "
        f"set {MEMORY_LIMIT_ENV} to the bytes you can spare (e.g. 16GB) or to 'off'."
    )


def check_audit_memory(
    dataset: "Dataset",
    *,
    production: "Dataset | None" = None,
    embedder: Any = None,
    embeddings: "Mapping[str, np.ndarray] | None" = None,
    knn_k: int = 30,
) -> MemoryEstimate:
    """The runner's check: estimate from the loaded data, compare, raise if it cannot fit."""
    estimate = estimate_audit_memory(
        rows=len(dataset),
        dim=_dimension(embedder, embeddings),
        knn_k=knn_k,
        production_rows=len(production) if production is not None else 0,
        text_bytes=_text_bytes(dataset),
        classes=_classes(dataset),
        responses=dataset.has_responses,
        load_model=_loads_model(embedder, embeddings, dataset, production),
    )
    check_memory(estimate, available_memory(), what=f"an audit of {len(dataset):,} rows")
    return estimate


def check_input_memory(
    path: str | os.PathLike,
    *,
    production: "str | os.PathLike | Dataset | None" = None,
    embedder: Any = None,
    embeddings: "Mapping[str, np.ndarray] | None" = None,
    knn_k: int = 30,
) -> MemoryEstimate | None:
    """The same check before ``path`` is read, from its row count and size (:func:`dataaudit.io.size.input_size`).

    Assumes responses and no labels (unknown before parsing); None when the input's rows cannot be
    counted without parsing it (JSON arrays, CSV), and the check after loading then decides alone.
    """
    from dataaudit.dataset import Dataset
    from dataaudit.io.size import input_size

    size = input_size(str(path))
    if size is None:
        return None
    production_rows = 0
    if isinstance(production, Dataset):
        production_rows = len(production)
    elif isinstance(production, (str, os.PathLike)):
        production_size = input_size(str(production))
        production_rows = production_size.rows if production_size is not None else 0
    given = set(embeddings or {})
    estimate = estimate_audit_memory(
        rows=size.rows, dim=_dimension(embedder, embeddings), knn_k=knn_k, production_rows=production_rows,
        text_bytes=size.text_bytes, load_model=not ({"prompt", "response"} <= given and not production_rows)
        and not _model_free(embedder),
    )
    check_memory(estimate, available_memory(), what=f"an audit of about {size.rows:,} rows")
    return estimate


def format_bytes(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _dimension(embedder: Any, embeddings: "Mapping[str, np.ndarray] | None") -> int:
    for matrix in (embeddings or {}).values():
        shape = getattr(matrix, "shape", ())
        if len(shape) == 2 and shape[1]:
            return int(shape[1])
    while embedder is not None:
        dim = getattr(embedder, "dim", None)
        if isinstance(dim, int) and dim > 0:
            return dim
        embedder = getattr(embedder, "embedder", None)  # a caching wrapper
    return DEFAULT_DIM


def _loads_model(embedder: Any, embeddings, dataset: "Dataset", production: "Dataset | None") -> bool:
    """Whether a model will run: not when every text has a vector already or the embedder is model-free."""
    given = set(embeddings or {})
    needed = {"prompt", "response"} if dataset.has_responses else {"prompt"}
    if needed <= given and (production is None or len(production) == 0):
        return False
    return not _model_free(embedder)


def _model_free(embedder: Any) -> bool:
    """Whether ``embedder`` (or the embedder a caching wrapper holds) runs no model."""
    from dataaudit.embed.base import HashingEmbedder, PrecomputedEmbedder

    while embedder is not None:
        if isinstance(embedder, (HashingEmbedder, PrecomputedEmbedder)):
            return True
        embedder = getattr(embedder, "embedder", None)
    return False


def _text_bytes(dataset: "Dataset") -> int:
    import polars as pl

    if dataset.frame.height == 0:
        return 0
    sizes = dataset.frame.select(
        pl.col("prompt").str.len_bytes().sum().alias("prompt"),
        pl.col("response").str.len_bytes().sum().alias("response"),
    ).row(0)
    return int(sum(size or 0 for size in sizes))


def _classes(dataset: "Dataset") -> int:
    return int(dataset.frame.get_column("label").drop_nulls().n_unique()) if dataset.has_labels else 0


def _meminfo_available(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_remaining(proc: Path, root: Path) -> int | None:
    """Lowest limit minus usage over this process's cgroup and its parents (v2, else v1);
    None when none of them has a limit."""
    remaining = []
    for folder in _cgroup_folders(proc, root):
        limit = _read_int(folder / "memory.max")
        if limit is not None:
            remaining.append(max(0, limit - (_read_int(folder / "memory.current") or 0)))
    v1 = root / "memory"
    limit = _read_int(v1 / "memory.limit_in_bytes")
    if limit is not None and limit < 1 << 60:  # v1 writes a huge number for "no limit"
        remaining.append(max(0, limit - (_read_int(v1 / "memory.usage_in_bytes") or 0)))
    return min(remaining) if remaining else None


def _cgroup_folders(proc: Path, root: Path) -> list[Path]:
    """This process's cgroup v2 folder (from /proc/self/cgroup) and each parent up to the root."""
    relative = ""
    try:
        for line in (proc / "self" / "cgroup").read_text().splitlines():
            if line.startswith("0::"):
                relative = line[3:].strip().strip("/")
    except OSError:
        pass
    folders = [root]
    for part in relative.split("/") if relative else []:
        if part in ("", ".", ".."):
            break
        folders.append(folders[-1] / part)
    return folders[::-1]


def _read_int(path: Path) -> int | None:
    """An integer file such as memory.max; None when absent, unreadable or "max" (no limit)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _sysconf_available() -> int | None:
    try:
        pages, page_size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None
