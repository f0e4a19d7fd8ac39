"""Staging folders for an audit directory's atomic swap, and the removal of those a kill left.

:func:`dataaudit.io.audit_store.save_audit` writes a new audit into a hidden sibling folder and
swaps it in. A SIGKILL in between leaves that folder behind, with nothing to ever remove it.
Its name says who made it, ``.NAME.<pid>.<host>.<random>.tmp``, so the next save can tell a
dead writer's leftover (removed) from a live writer's work (left alone), without a marker file
that the swap would carry into the audit itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Suffix of the folder the fallback swap (no atomic exchange) parks the old audit in.
OLD_SUFFIX = ".old"
#: Staging folders whose writer cannot be checked (another host, an older dataaudit) are only
#: removed when untouched this long: no save takes a day, so none is still being written.
STALE_SECONDS = 24 * 3600
#: ``tempfile.mkdtemp``'s random part: 8 characters of this alphabet.
_RANDOM = r"[a-z0-9_]{8}"


def _host_tag() -> str:
    """A short, file-name-safe tag of this machine: a PID only means something on its own host."""
    return hashlib.blake2b(socket.gethostname().encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def make_staging(out: Path) -> Path:
    """A new, empty staging folder beside ``out``, named after this process."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.{_host_tag()}.", suffix=".tmp", dir=out.parent))


def _pattern(out: Path) -> re.Pattern[str]:
    # ``.NAME.<pid>.<host>.<random>.tmp`` (this version) or ``.NAME.<random>.tmp`` (earlier ones).
    return re.compile(rf"\.{re.escape(out.name)}\.(?:(?P<pid>[0-9]+)\.(?P<host>[0-9a-f]{{8}})\.)?{_RANDOM}\.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except (OSError, OverflowError):  # a PID this system cannot have
        return False
    return True


def _untouched_for(path: Path, now: float) -> float:
    try:
        return now - path.lstat().st_mtime
    except OSError:
        return 0.0


def is_stale_staging(entry: Path, out: Path, *, now: float | None = None) -> bool:
    """Whether ``entry`` is a staging folder of ``out`` that no live writer uses.

    Only real folders whose name matches the staging pattern exactly qualify. One made on this
    host is stale once its PID is dead; one whose writer cannot be checked once untouched for
    :data:`STALE_SECONDS`.
    """
    match = _pattern(out).fullmatch(entry.name)
    if match is None or entry.is_symlink() or not entry.is_dir():
        return False
    now = time.time() if now is None else now
    if match["pid"] is not None and match["host"] == _host_tag():
        return not _pid_alive(int(match["pid"])) or _untouched_for(entry, now) > STALE_SECONDS
    return _untouched_for(entry, now) > STALE_SECONDS


def remove_stale_staging(out: str | os.PathLike) -> list[Path]:
    """Remove what killed saves of ``out`` left beside it; return the folders removed.

    That is: staging folders no live writer uses (see :func:`is_stale_staging`), and the old
    audit the fallback swap parks at ``.NAME.old`` once ``out`` itself exists again (with
    ``out`` missing, that folder is the audit, and the save puts it back instead). Nothing
    else is touched: other names, files, and symbolic links stay.
    """
    out = Path(os.path.realpath(out)) if Path(out).is_symlink() else Path(out)  # as the save resolves it
    parent = out.parent
    if not parent.is_dir():
        return []
    removed = []
    now = time.time()
    prefix = f".{out.name}."
    try:
        entries = [parent / name for name in os.listdir(parent) if name.startswith(prefix)]
    except OSError:
        return []
    for entry in entries:
        if is_stale_staging(entry, out, now=now):
            shutil.rmtree(entry, ignore_errors=True)  # another user's folder may refuse: left as it is
            if not os.path.lexists(entry):
                removed.append(entry)
    old = parent / f".{out.name}{OLD_SUFFIX}"
    if out.is_dir() and old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
        if not os.path.lexists(old):
            removed.append(old)
    if removed:
        logger.info("removed %d folder(s) left by an interrupted save of %s: %s", len(removed), out,
                    ", ".join(path.name for path in removed))
    return removed
