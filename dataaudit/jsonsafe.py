"""Strict JSON for everything dataaudit writes: no NaN, no Infinity, no odd types.

``json.dumps`` writes NaN and Infinity by default, which strict parsers (JavaScript's
``JSON.parse``, jq, most other languages) reject. Summaries go through :func:`json_safe`
first, and are dumped with ``allow_nan=False`` so a miss fails loudly here, not in a reader.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None (what a saved table's cell may hold)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types: non-finite floats become None, numpy scalars Python ones,
    tuples and sets lists, dict keys strings, and anything else its ``repr``."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return repr(value)


def dumps_strict(value: Any, *, indent: int | None = None) -> str:
    """``json.dumps`` of :func:`json_safe` (``value``) with ``allow_nan=False``."""
    return json.dumps(json_safe(value), allow_nan=False, ensure_ascii=False, indent=indent)
