"""Process-wide settings a library borrows and gives back: cores, torch's thread count and
global random state, transformers' logging; and where the user's caches live.

A library that sets ``torch.set_num_threads`` or ``torch.manual_seed`` and leaves them changes
the caller's program (a notebook's next model trains on another thread count or random stream),
so each is a context manager that restores what it found. Heavy imports stay inside.
"""

from __future__ import annotations

import functools
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

__all__ = ["NATIVE_BFLOAT16_FLAGS", "available_cores", "cpu_has_native_bfloat16", "default_cache_dir", "in_background", "in_place", "quiet_transformers", "seeded_torch", "torch_rng_kept", "torch_seeded", "torch_threads"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dataaudit``, else ``~/.cache/dataaudit`` (embeddings, models, kernels)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative value.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "dataaudit"


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or ``taskset``'s share),
    not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity API
        return os.cpu_count() or 1


#: CPU flags of native bfloat16 dot products (Linux names): AMX tiles, and AVX512-BF16's
#: ``vdpbf16ps``. Elsewhere oneDNN emulates bfloat16: slower than float32, not faster.
NATIVE_BFLOAT16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.lru_cache(maxsize=4)
def cpu_has_native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 products natively (read from /proc/cpuinfo: Linux only, no torch)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return not NATIVE_BFLOAT16_FLAGS.isdisjoint(line.split())
    except OSError:
        pass
    return False


def in_place(function: Callable[..., T], *args: Any) -> Callable[[], T]:
    """:func:`in_background`'s stand-in for work too small to ship: runs when its result is asked for."""
    return functools.partial(function, *args)


def in_background(function: Callable[..., T], *args: Any) -> Callable[[], T]:
    """Start ``function(*args)`` in a worker process; return a call that waits for its result.

    For two pieces of single-threaded work that need not wait for each other (a seeded UMAP
    layout holds one core, and so does HDBSCAN): the caller runs one while a worker runs the
    other. The worker is one of joblib's loky processes, which the local engine's per-row work
    reuses. With one core the call runs when its result is asked for; a call that cannot be
    shipped to a worker (an unpicklable argument) runs then too, and so does one that failed
    there, so that a real error is raised again here, with its own traceback.
    """
    here = in_place(function, *args)
    if available_cores() < 2:
        return here
    try:
        from joblib import Parallel, delayed

        # A generator: joblib dispatches at once, and the result is read when asked for. As many
        # jobs as the engine's per-row work asks for by default, so loky keeps one pool of workers
        # rather than resizing it between the two.
        pending = Parallel(n_jobs=available_cores(), backend="loky", return_as="generator")([delayed(function)(*args)])
    except Exception as error:  # noqa: BLE001 - no worker processes here: run in this process
        logger.debug("no worker process (%s: %s); running in this process", type(error).__name__, error)
        return here

    def result() -> T:
        try:
            return list(pending)[0]
        except Exception as error:  # noqa: BLE001 - see the docstring
            logger.debug("the worker process failed (%s: %s); running in this process", type(error).__name__, error)
            return here()

    return result


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' loading bars and warnings: the library reports through Progress and
    its own logger only."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if was_enabled:
            transformers_logging.enable_progress_bar()


@contextmanager
def torch_threads(threads: int | None = None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads``, and the caller's count restored afterwards.

    The default keeps the caller's count but never more than :func:`available_cores`: torch may
    count the host's cores and oversubscribe a container, while a count the caller lowered on
    purpose (a 1-thread measurement) is respected.
    """
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads or min(saved, available_cores()))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@contextmanager
def torch_rng_kept() -> Iterator[None]:
    """torch's global random state (CPU and every CUDA device) as it was before, afterwards."""
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield


@contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """torch's global random state seeded with ``seed``, and the caller's restored afterwards."""
    import torch

    with torch_rng_kept():
        torch.manual_seed(seed)
        yield


def torch_seeded(method: F) -> F:
    """Run ``method`` inside :func:`seeded_torch` with its own keyword-only ``seed`` argument."""

    @functools.wraps(method)
    def wrapper(*args: Any, seed: int, **kwargs: Any) -> Any:
        with seeded_torch(seed):
            return method(*args, seed=seed, **kwargs)

    return wrapper  # type: ignore[return-value]
