"""Parameters read off a constructor's signature, as scikit-learn's ``get_params`` does.

Components store each keyword-only argument under its own name, so the signature *is* the
config schema, and the values can go straight into a report.
"""

from __future__ import annotations

import inspect
from typing import Any


def constructor_params(component: object) -> dict[str, Any]:
    """``{name: value}`` for every parameter of ``type(component).__init__``."""
    signature = inspect.signature(type(component).__init__)
    return {name: getattr(component, name) for name in signature.parameters if name != "self"}
