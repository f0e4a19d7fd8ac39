"""``LoadOptions``: the one value that says how to read an input (kept light: engines import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataaudit.io.formats import FieldMapping

__all__ = ["DEFAULT_LOAD", "LoadOptions"]


@dataclass(frozen=True)
class LoadOptions:
    """How to read an input: its format, which fields hold what, and whether bad lines are skipped.

    One value for every reader (:func:`load`, :func:`from_records`, an engine's ``load``, the
    CLI's format options), so the choices travel together and cannot drift between copies.
    ``format="auto"`` detects the format per file; a ``*_field`` names the field holding that
    part (and implies the ``fields`` format).
    """

    format: str = "auto"
    prompt_field: str | None = None
    response_field: str | None = None
    label_field: str | None = None
    system_field: str | None = None
    skip_bad_lines: bool = False

    def mapping(self) -> "FieldMapping":
        """The fields named here, for the format adapters."""
        from dataaudit.io.formats import FieldMapping

        return FieldMapping(prompt=self.prompt_field, response=self.response_field, label=self.label_field,
                            system=self.system_field)


#: Detect the format, no named fields, bad lines are an error.
DEFAULT_LOAD = LoadOptions()
