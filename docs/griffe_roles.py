"""Griffe extension: Sphinx roles in docstrings (``:class:`~dataaudit.dataset.Dataset```) as inline code.

numpydoc writes cross-references as Sphinx roles; mkdocstrings renders Markdown, where they
would show as literal ``:class:``. The rewrite is ``plain_roles`` in ``hooks.py``, which the
generated check pages use too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import griffe

_spec = importlib.util.spec_from_file_location("dataaudit_docs_hooks", Path(__file__).with_name("hooks.py"))
_hooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hooks)


class SphinxRolesAsCode(griffe.Extension):
    """Rewrite the roles of every docstring as it is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _hooks.plain_roles(obj.docstring.value)
