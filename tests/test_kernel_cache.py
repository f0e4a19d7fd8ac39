"""The disk cache for pynndescent's and UMAP's kernels goes where dataaudit's caches go (``NUMBA_CACHE_DIR``
when set), keeps one entry per kernel across processes, and can be turned off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataaudit.kernel_cache import kernel_cache_dir

pytest.importorskip("pynndescent")

REPO = Path(__file__).resolve().parents[1]

# In a fresh process: numba kernels and the once-per-process switch are global state.
_SCRIPT = """
import numpy as np
from dataaudit.kernel_cache import persist_pynndescent_kernels
from pynndescent.utils import deheap_sort

print(persist_pynndescent_kernels())
deheap_sort(np.zeros((3, 2), dtype=np.int32), np.ones((3, 2), dtype=np.float32))
"""


def _run(tmp_path: Path, script: str = _SCRIPT, **env: str) -> int:
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    environment.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO), **env)
    out = subprocess.run([sys.executable, "-c", script], env=environment, check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def _cached_kernels(folder: Path, kernel: str = "deheap_sort") -> list[str]:
    return sorted(path.name for path in folder.rglob(f"*.{kernel}-*.nbc"))


def test_dir_follows_xdg_cache_home_and_numba_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernel_cache_dir() == tmp_path / "dataaudit" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernel_cache_dir() == tmp_path / "mine"


def test_uncached_kernels_are_written_to_the_cache_dir_once(tmp_path):
    folder = tmp_path / "xdg" / "dataaudit" / "numba"
    assert _run(tmp_path) > 0
    written = _cached_kernels(folder)
    assert len(written) == 1  # deheap_sort is not cache=True in pynndescent: it is ours
    # A second process reuses the entry instead of appending another.
    _run(tmp_path)
    assert _cached_kernels(folder) == written


def test_off_switch_writes_nothing(tmp_path):
    assert _run(tmp_path, DATAAUDIT_KERNEL_CACHE="off") == 0
    assert not (tmp_path / "xdg").exists()


_UMAP_SCRIPT = """
import numpy as np
from dataaudit.kernel_cache import persist_umap_kernels
from umap.umap_ import smooth_knn_dist

print(persist_umap_kernels())
smooth_knn_dist(np.sort(np.random.default_rng(0).random((20, 5)), axis=1).astype(np.float32), 5.0)
"""


def test_umap_kernels_are_cached_too(tmp_path):
    pytest.importorskip("umap")
    folder = tmp_path / "xdg" / "dataaudit" / "numba"
    assert _run(tmp_path, _UMAP_SCRIPT) > 0
    written = _cached_kernels(folder, "smooth_knn_dist")
    assert len(written) == 1  # not cache=True in UMAP: about 3 s of compiling in every process
    _run(tmp_path, _UMAP_SCRIPT)
    assert _cached_kernels(folder, "smooth_knn_dist") == written


_KERNELS = '''
import numba


@numba.njit
def twice(x):
    return 2.0 * x


@numba.njit
def thrice(x):
    return 3.0 * x


@numba.njit
def apply(f, values):
    total = 0.0
    for value in values:
        total += f(value)
    return total
'''

_ARGUMENT_SCRIPT = """
import sys

import numpy as np

sys.path.insert(0, {folder!r})
import kernels
from dataaudit.kernel_cache import _cache_class, kernel_cache_dir

kernels.apply._cache = _cache_class(kernel_cache_dir())(kernels.apply.py_func)
answer = kernels.apply(kernels.{function}, np.arange(3.0))
print(answer, sum(kernels.apply.stats.cache_hits.values()))
"""


def _apply(tmp_path: Path, function: str) -> tuple[float, int]:
    script = _ARGUMENT_SCRIPT.format(folder=str(tmp_path / "module"), function=function)
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    environment.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", script], env=environment, check=True, capture_output=True, text=True)
    answer, hits = out.stdout.split()[-2:]
    return float(answer), int(hits)


def test_a_kernel_given_a_compiled_function_is_reused_by_the_next_process_for_that_function_only(tmp_path):
    # pynndescent passes its distance this way; numba's own key never matches in another process.
    (tmp_path / "module").mkdir()
    (tmp_path / "module" / "kernels.py").write_text(_KERNELS)
    folder = tmp_path / "xdg" / "dataaudit" / "numba"
    assert _apply(tmp_path, "twice") == (6.0, 0)
    assert len(_cached_kernels(folder, "apply")) == 1
    assert _apply(tmp_path, "twice") == (6.0, 1)  # loaded, not compiled
    # Another function passed gets its own entry, never the first one's code.
    assert _apply(tmp_path, "thrice") == (9.0, 0)
    assert _apply(tmp_path, "thrice") == (9.0, 1)
    assert _apply(tmp_path, "twice") == (6.0, 1)
