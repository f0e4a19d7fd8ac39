"""Atomic output: a killed run leaves either the old file (or folder) or the new one, never half."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from dataaudit.io.staging import OLD_SUFFIX


def current_umask() -> int:
    """This process's umask (reading it means setting it, so it is set straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _final_mode(target: Path) -> int:
    """The mode a plainly created file would get (mkstemp's 0600 would hide reports from
    other users); an existing file keeps its own."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path`` for binary writing; rename it over ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, _final_mode(target))
        os.replace(temp_name, target)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as stream:
        stream.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside ``path`` for writers that want a file name (e.g. Parquet)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        yield Path(temp_name)
        os.chmod(temp_name, _final_mode(target))
        os.replace(temp_name, target)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise


def _temp_dir(target: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))


@contextmanager
def atomic_dir(target: str | os.PathLike, *, replace: bool = False,
               make_staging: Callable[[Path], Path] = _temp_dir) -> Iterator[Path]:
    """A new hidden folder beside ``target`` to fill; on success it appears at ``target`` whole.

    ``replace=False`` is for caches, where every writer makes the same content: if another
    process published ``target`` first, its folder is kept and this one dropped. ``replace=True``
    swaps a new version in over an old one (see :func:`swap_in`). On any error, or after the
    swap, the staging folder (by then the old version) is removed. The folder gets the mode a
    plainly created one would (``mkdtemp``'s 0700 would hide it from other users).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging(target)
    try:
        yield staging
        os.chmod(staging, 0o777 & ~current_umask())
        if replace:
            swap_in(staging, target)
        else:
            try:
                os.replace(staging, target)
            except OSError:
                if not target.is_dir():  # not a lost race with another writer
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def exchange(left: Path, right: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc older than glibc 2.28
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(left), at_fdcwd, os.fsencode(right), rename_exchange) == 0


def swap_in(staging: Path, out: Path) -> None:
    """Put ``staging`` where ``out`` is: one atomic exchange (``staging`` then holds the old
    version), or without one two renames that :func:`recover_interrupted_swap` completes if a
    kill falls between them."""
    if not out.exists():
        os.rename(staging, out)
        return
    if exchange(staging, out):
        return
    old = out.with_name(f".{out.name}{OLD_SUFFIX}")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_swap(out: Path) -> None:
    """A kill between the fallback's two renames leaves the old version beside ``out``: put it back."""
    old = out.with_name(f".{out.name}{OLD_SUFFIX}")
    if old.is_dir() and not out.exists():
        os.rename(old, out)
