"""Progress reporting that the library emits and a front end renders.

The library never prints. Long stages report through a :class:`Progress`; the default
:class:`NullProgress` does nothing, and the CLI passes a rich-backed one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Protocol


class ProgressTask(Protocol):
    def advance(self, amount: int = 1) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None = None) -> "contextmanager[ProgressTask]": ...


class _NullTask:
    def advance(self, amount: int = 1) -> None:
        return None


class NullProgress:
    """Swallows progress: the default for library and test use."""

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[_NullTask]:
        yield _NullTask()


NULL_PROGRESS = NullProgress()
