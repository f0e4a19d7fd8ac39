"""Progress reporting that the library emits and a front end renders.

The library never prints. Long stages report through a :class:`Progress`; the default
:class:`NullProgress` does nothing, and the CLI passes a rich-backed one on a terminal, or
:class:`LogProgress` (plain timed lines) when stderr is a log.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol, TextIO


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


class LogProgress:
    """Progress for logs (CI, a pipe, a file): one plain line per task every ``interval`` seconds.

    Each line says the stage, how far it is, its rate and ETA, and the task's last line says
    it is done: no bars, no carriage returns, no blank lines, so a CI log stays readable.
    ``clock`` is injectable so tests need not sleep.
    """

    def __init__(self, *, stream: TextIO, interval: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.interval = interval
        self.clock = clock

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator["_LogTask"]:
        task = _LogTask(self, description, total)
        yield task
        task.finish()


class _LogTask:
    def __init__(self, owner: LogProgress, description: str, total: int | None):
        self.owner = owner
        self.description = description
        self.total = total
        self.done = 0
        self.started = self.last = owner.clock()

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = self.owner.clock()
        if now - self.last >= self.owner.interval:
            self.last = now
            self.owner._write(self._line(now, finished=False))

    def finish(self) -> None:
        self.owner._write(self._line(self.owner.clock(), finished=True))

    def _line(self, now: float, *, finished: bool) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        if finished:
            if not self.done:
                return f"{self.description}: done in {_duration(elapsed)}"
            return f"{self.description}: done, {count} in {_duration(elapsed)} ({_rate(rate)})"
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        eta = ""
        if self.total and rate > 0:
            eta = f", eta {_duration(max(self.total - self.done, 0) / rate)}"
        return f"{self.description}: {count}{share}, {_rate(rate)}, {_duration(elapsed)} elapsed{eta}"


def _rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s" if per_second >= 100 else f"{per_second:.2g}/s"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
