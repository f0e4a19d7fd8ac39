"""The report's Jinja2 environment, its filters, and the inlined CSS and JavaScript.

Autoescaping is on for every template, the report's own and the ones checks supply through
:meth:`dataaudit.checks.base.Check.report_section`, so no template ever calls ``escape``.
Plain values are escaped with :func:`html.escape` (``'`` becomes ``&#x27;``), as reports
were before templates; values that are already markup (macro output, the inlined assets,
the escaped JSON block) pass through. ``StrictUndefined`` turns a misspelt name into an
error instead of an empty string.

The stylesheet and the script are real files in ``assets/``, inlined at render time so the
report stays one self-contained file; the Content-Security-Policy pins the script by the
hash of exactly the text inlined.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

#: The template every check's section template can import: ``{% import MACROS as m %}``.
MACROS = "macros.html.j2"


@lru_cache(maxsize=1)
def environment():
    """The one autoescaping environment, built on first use (``import dataaudit`` stays fast)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dataaudit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_escape_plain,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, short=short, json_text=json_text, verdict_badge=verdict_badge)
    return env


@lru_cache(maxsize=64)
def from_source(source: str):
    """A template compiled from source text (a check's section), cached by its text."""
    return environment().from_string(source)


def _escape_plain(value: Any) -> Any:
    if hasattr(value, "__html__"):
        return value
    from markupsafe import Markup

    return Markup(html.escape(str(value)))


@lru_cache(maxsize=1)
def assets() -> tuple[Any, Any, str]:
    """``(style, script, script_hash)``: the asset files as markup, and the CSP hash of the script."""
    from markupsafe import Markup

    folder = resources.files("dataaudit.report") / "assets"
    style = (folder / "report.css").read_text(encoding="utf-8")
    script = (folder / "report.js").read_text(encoding="utf-8")
    # Inlined as-is: a closing tag inside either file would end its element early.
    if re.search(r"</style", style, re.IGNORECASE) or re.search(r"</script", script, re.IGNORECASE):
        raise RuntimeError("report assets must not contain a closing </style> or </script> tag")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return Markup(style), Markup(script), digest


# -- filters -------------------------------------------------------------------------------------
def fmt(value: Any, percent: bool = False) -> str:
    """A value for people: thousands separators, 4 significant digits, shares as percentages."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        if percent and 0.0 <= float(value) <= 1.0:
            return f"{float(value):.1%}"
        return f"{float(value):,.4g}"
    return str(value) or "—"


def short(value: Any, limit: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def json_text(value: Any) -> str:
    """Deeply nested values as one line of JSON text (escaped like any other text)."""
    from dataaudit.jsonsafe import json_safe

    return json.dumps(json_safe(value), ensure_ascii=False)


#: Badge class per fine-tune verdict (:class:`~dataaudit.finetune.stats.Verdict` values).
VERDICT_BADGES = {"confirmed": "ok", "not confirmed": "bad"}


def verdict_badge(verdict: Any) -> str:
    """The badge class of a fine-tune verdict: ``ok``, ``bad``, or none (inconclusive, budget too
    small, or an unknown value). Looked up by the verdict's value, never read from its words."""
    return VERDICT_BADGES.get(str(verdict), "") if verdict is not None else ""
