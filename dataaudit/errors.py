"""Errors a user can act on: each names the file, the line and what was expected."""

from __future__ import annotations


class DataAuditError(Exception):
    """Base class: the CLI turns these into a one-line message and exit code 2."""

    exit_code = 2


class InputError(DataAuditError):
    """Bad input data: names the file and, where known, the 1-based line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.detail = message
        where = path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class UsageError(DataAuditError):
    """A bad option or combination of options."""


class ResourceError(DataAuditError):
    """The job cannot fit (e.g. in memory): says what it needs, what is available, what to do."""

    exit_code = 3
