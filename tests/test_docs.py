"""The docs site's generated check pages cover the registry, and the API reference covers ``__all__``.

The generator in ``docs/hooks.py`` is called directly: no MkDocs build here (CI builds the site
with ``mkdocs build --strict``).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import dataaudit
from dataaudit.checks import available_checks
from dataaudit.checks.base import REGISTRY, Check, register_check, result_from_findings
from dataaudit.params import Interval, Options

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("dataaudit_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def _kind_codes(cls) -> list[str]:
    kinds = cls.kind_specs() if hasattr(cls, "kind_specs") else cls.kinds
    return list(kinds)


def test_every_registered_check_has_a_page_with_its_kinds_and_parameters():
    pages = hooks.check_pages()
    registry = available_checks()
    assert set(pages) == {"checks/index.md", *(f"checks/{name}.md" for name in registry)}
    for name, cls in registry.items():
        page = pages[f"checks/{name}.md"]
        assert page.startswith(f"# `{name}`\n")
        assert cls.description in page
        for code in _kind_codes(cls):
            assert f"| `{code}` |" in page, (name, code)
        for parameter, default in cls().get_params().items():
            assert re.search(rf"^\| `{parameter}` \| {re.escape(hooks._code(default))} \|", page, re.MULTILINE), (name, parameter)
            assert f"[checks.{name}]" in page
        assert f"[`{name}`]({name}.md)" in pages["checks/index.md"]


class _Shouting(Check):
    """Responses written in capitals.

    Parameters
    ----------
    min_share : float
        Share of upper-case letters from which a response shouts.
    mode:
        Which side to read.
    """

    name = "docs_test_shouting"
    description = "Responses in capitals: the model learns to shout."
    kinds = ("shouting",)
    _parameter_constraints = {"min_share": [Interval(float, 0, 1)], "mode": [Options({"response", "prompt"})]}

    def __init__(self, *, min_share: float = 0.8, mode: str = "response"):
        self.min_share = min_share
        self.mode = mode

    def run(self, ctx):
        return result_from_findings(self.name, ctx, [])


def test_a_check_registered_later_gets_its_page_without_anyone_writing_it():
    register_check(_Shouting)
    try:
        pages = hooks.check_pages()
    finally:
        REGISTRY.pop(_Shouting.name)
    page = pages["checks/docs_test_shouting.md"]
    assert "Responses in capitals: the model learns to shout." in page
    assert "| `shouting` |" in page
    assert "| `min_share` | `0.8` | float in [0, 1] | Share of upper-case letters from which a response shouts. |" in page
    assert "| `mode` | `'response'` | one of 'prompt', 'response' | Which side to read. |" in page
    assert 'mode = "response"' in page and "min_share = 0.8" in page
    assert "docs_test_shouting" not in available_checks()


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("Summary.\n\nParameters\n----------\nk : int\n    Neighbours.\n    Ten by default.\n", {"k": "Neighbours. Ten by default."}),
        ("Parameters\n----------\nk:\n    Neighbours.\nfolds\n    Folds.\n\nNotes\n-----\nnot a parameter\n",
         {"k": "Neighbours.", "folds": "Folds."}),
        ("Parameters\n----------\na, b: When short responses count as labels.\n", {"a": "When short responses count as labels.",
                                                                                    "b": "When short responses count as labels."}),
        ("No sections at all.", {}),
    ],
)
def test_parameter_docs_reads_numpy_parameter_sections(doc, expected):
    assert hooks.parameter_docs(doc) == expected


def test_the_nav_lists_every_generated_page_once():
    config = {"nav": [{"Home": "index.md"}, {"Checks": [{"Overview": "checks/index.md"}]}]}
    hooks.on_config(config)
    section = config["nav"][1]["Checks"]
    assert section[0] == {"Overview": "checks/index.md"}
    assert [next(iter(entry.values())) for entry in section[1:]] == [f"checks/{name}.md" for name in available_checks()]
    hooks.on_config(config)  # a rebuild (mkdocs serve) does not list them twice
    assert len(config["nav"][1]["Checks"]) == len(section)


def test_the_api_reference_documents_every_public_name():
    reference = (DOCS / "api.md").read_text(encoding="utf-8")
    for name in dataaudit.__all__:
        if name == "__version__":
            continue
        assert f"::: {dataaudit._LAZY[name]}.{name}\n" in reference, name


def test_sphinx_roles_become_inline_code_for_markdown():
    text = "Returns a :class:`~dataaudit.dataset.Dataset`; see :func:`dataaudit.io.load.load` and :py:meth:`x`."
    assert hooks.plain_roles(text) == "Returns a `Dataset`; see `dataaudit.io.load.load` and `x`."


def test_every_hand_written_note_belongs_to_a_registered_check():
    notes = {path.stem for path in (DOCS / "checks" / "_notes").glob("*.md")}
    assert notes and notes <= set(available_checks())


def test_every_hand_written_page_is_in_the_nav():
    config = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")} - {
        path.relative_to(DOCS).as_posix() for path in (DOCS / "checks" / "_notes").glob("*.md")}
    for page in sorted(pages):
        assert re.search(rf"^\s*- (?:[^:\n]+: )?{re.escape(page)}\s*$", config, re.MULTILINE), page
