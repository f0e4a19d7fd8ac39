"""MkDocs hook: one page per registered check, written from the registry at build time.

Each page is built from what the check class itself declares: ``description``, its kinds
(``kind_specs()`` where the check has it, else ``kinds`` as a ``{code: Kind}`` mapping or a
tuple of codes), ``needs``, the class docstring (its numpy ``Parameters`` section gives each
parameter's text), ``get_params()`` of a default instance and ``_parameter_constraints``. So a
check registered later, built-in or through a plug-in, gets its page without anyone writing it,
and a changed default or constraint cannot leave the docs behind.

Hand-written notes (benchmarks, longer explanations) for a check live in
``docs/checks/_notes/<name>.md`` and are appended to its generated page.

:func:`check_pages` is the pure part (``{path: markdown}``), so a test can call it without
building the site; ``on_config`` and ``on_files`` are the MkDocs hook events.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

DOCS_DIR = Path(__file__).resolve().parent
# The pages describe the checkout the site is built from (as mkdocstrings' ``paths: [.]`` does),
# not whichever dataaudit the environment happens to have installed.
if str(DOCS_DIR.parent) not in sys.path:
    sys.path.insert(0, str(DOCS_DIR.parent))
NOTES_DIR = DOCS_DIR / "checks" / "_notes"
#: The nav section the generated pages go into (``mkdocs.yml``: ``- Checks: [checks/index.md]``).
NAV_SECTION = "Checks"

_BUILT: dict[str, str] = {}
_SECTION_HEADER = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}\s*$", re.MULTILINE)
_PARAM_LINE = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?::\s*(.*))?$")


_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|obj|exc|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role written as inline code, shortened as Sphinx
    shortens it (a leading ``~`` keeps the last name only): MkDocs renders Markdown, not roles."""
    def as_code(match: re.Match) -> str:
        target = match.group(2).strip()
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    return _ROLE.sub(as_code, text)


def _docstring_sections(doc: str) -> tuple[str, dict[str, str]]:
    """Split a numpy-style docstring into its summary text and ``{section title: body}``."""
    matches = list(_SECTION_HEADER.finditer(doc))
    if not matches:
        return doc.strip(), {}
    sections = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(doc)
        sections[match.group(1).strip()] = doc[match.end():end].strip("\n")
    return doc[: matches[0].start()].strip(), sections


def parameter_docs(doc: str) -> dict[str, str]:
    """``{name: text}`` from a numpy ``Parameters`` section (``name``, ``name:`` or ``name : type``)."""
    _, sections = _docstring_sections(doc)
    body = sections.get("Parameters", "")
    described: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body.splitlines():
        if line and not line[0].isspace():
            match = _PARAM_LINE.match(line.strip())
            if match:
                current = []
                for name in match.group(1).lstrip("*").split(","):
                    described[name.strip()] = current  # names listed together share one text
                after = (match.group(2) or "").strip()
                if len(after.split()) > 3:  # prose after the colon, not a type
                    current.append(after)
                continue
        if current is not None and line.strip():
            current.append(line.strip())
    return {name: " ".join(lines) for name, lines in described.items()}


def _constraints(cls: type) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("_parameter_constraints", {}))
    return merged


def _describe_constraint(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return constraint.__name__
    return str(constraint)


def _kind_specs(cls: type) -> dict[str, Any]:
    """``{code: metadata or None}`` from whichever form of kind metadata the check declares."""
    if callable(getattr(cls, "kind_specs", None)):
        return dict(cls.kind_specs())
    kinds = getattr(cls, "kinds", ())
    if isinstance(kinds, Mapping):
        return dict(kinds)
    return {code: None for code in kinds}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _toml_value(value: Any) -> str | None:
    """A value as TOML, or None where TOML cannot say it (None, objects)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple, frozenset, set)):
        items = [_toml_value(item) for item in (sorted(value) if isinstance(value, (set, frozenset)) else value)]
        return None if any(item is None for item in items) else "[" + ", ".join(items) + "]"
    return None


def _kinds_table(specs: dict[str, Any]) -> list[str]:
    if not specs:
        return ["The check's findings use its name as their `kind`.", ""]
    metadata = [spec for spec in specs.values() if spec is not None]
    columns = [f.name for f in fields(metadata[0])] if metadata and is_dataclass(metadata[0]) else []
    lines = ["| kind | " + " | ".join(columns) + " |" if columns else "| kind |",
             "| --- |" + " --- |" * len(columns)]
    for code, spec in specs.items():
        cells = [_cell(getattr(spec, column, "")) for column in columns]
        lines.append(f"| `{code}` | " + " | ".join(cells) + " |" if columns else f"| `{code}` |")
    return [*lines, ""]


def _parameters_table(cls: type, params: dict[str, Any], docs: dict[str, str]) -> list[str]:
    if not params:
        return ["This check takes no parameters.", ""]
    constraints = _constraints(cls)
    lines = ["| parameter | default | allowed | what it does |", "| --- | --- | --- | --- |"]
    for name, default in params.items():
        allowed = " or ".join(_describe_constraint(c) for c in constraints.get(name, [])) or "not constrained"
        lines.append(f"| `{name}` | {_code(default)} | {_cell(allowed)} | {_cell(docs.get(name, ''))} |")
    return [*lines, ""]


def _config_example(name: str, params: dict[str, Any]) -> list[str]:
    lines = [f"[checks.{name}]"]
    for key, value in params.items():
        text = _toml_value(value)
        if text is not None:
            lines.append(f"{key} = {text}")
        elif value is None:
            lines.append(f"# {key} =   # None: chosen at run time")
        else:
            lines.append(f"# {key} =   # {value!r}: set it in Python")
    return ["```toml", *lines, "```", ""]


def _default_params(cls: type) -> dict[str, Any]:
    """``get_params()`` of a default instance; the signature's defaults where one cannot be built."""
    try:
        return cls().get_params()
    except Exception:  # a plug-in with a required parameter still gets its page
        signature = inspect.signature(cls.__init__)
        return {name: (None if p.default is inspect.Parameter.empty else p.default)
                for name, p in signature.parameters.items() if name != "self"}


def check_page(name: str, cls: type) -> str:
    """The Markdown page of one registered check."""
    doc = plain_roles(inspect.getdoc(cls) or "")
    summary, sections = _docstring_sections(doc)
    params = _default_params(cls)
    out = [f"# `{name}`", "", cls.description or summary.splitlines()[0] if (cls.description or summary) else "", ""]
    out += [f"Class `{cls.__module__}.{cls.__qualname__}`. `dataaudit audit DATA --checks {name}` runs it alone; "
            f"`--checks` takes a comma-separated list, and `export --drop {name}` drops the rows it flags.", ""]
    if summary:
        out += ["## What it flags", "", summary, ""]
    out += ["## Kinds", "", "Each finding's machine code (`kind` in `findings.jsonl`):", "", *_kinds_table(_kind_specs(cls))]
    needs = sorted(getattr(cls, "needs", ()) or ())
    if needs:
        out += ["## Shared artefacts", "", "Computed once per audit and shared with the other checks: "
                + ", ".join(f"`{need}`" for need in needs) + ".", ""]
    out += ["## Parameters", "", *_parameters_table(cls, params, parameter_docs(doc))]
    out += ["In a [configuration file](../configuration.md), with the defaults:", "", *_config_example(name, params)]
    out += ["In Python:", "", "```python", "from dataaudit.checks import make_checks",
            f'checks = make_checks({{"{name}": {{}}}})  # parameters by name, checked against the table above',
            "```", ""]
    for title, body in sections.items():
        if title != "Parameters":
            out += [f"## {title}", "", body, ""]
    notes = NOTES_DIR / f"{name}.md"
    if notes.is_file():
        out += [notes.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(out)


def check_pages() -> dict[str, str]:
    """``{docs path: markdown}``: ``checks/index.md`` and ``checks/<name>.md`` for every registered check."""
    from dataaudit.checks import available_checks

    registry = available_checks()
    index = ["# Checks", "",
             "Every registered check, generated from the registry when the site is built "
             "(`dataaudit checks` lists the same). Plug-ins registered with `@register_check` appear here "
             "when their package is installed; see [writing a check](../writing-a-check.md).", "",
             "| check | flags | kinds |", "| --- | --- | --- |"]
    pages = {}
    for name, cls in registry.items():
        pages[f"checks/{name}.md"] = check_page(name, cls)
        kinds = ", ".join(f"`{code}`" for code in _kind_specs(cls))
        index.append(f"| [`{name}`]({name}.md) | {_cell(cls.description)} | {kinds} |")
    return {"checks/index.md": "\n".join([*index, ""]), **pages}


def _nav_section(nav: list[Any]) -> list[Any] | None:
    for entry in nav:
        if isinstance(entry, dict) and NAV_SECTION in entry:
            return entry[NAV_SECTION]
    return None


def on_config(config):
    """List every generated check page in the nav's ``Checks`` section, after the index."""
    pages = check_pages()
    section = _nav_section(config["nav"] or [])
    if section is not None:
        listed = {entry if isinstance(entry, str) else next(iter(entry.values())) for entry in section}
        for path in pages:
            if path not in listed:
                section.append({Path(path).stem: path})
    _BUILT.clear()
    _BUILT.update(pages)  # built once per build, served by on_files
    return config


def on_files(files, config):
    """Serve the generated pages as if they were files in ``docs/``."""
    from mkdocs.structure.files import File

    for path, content in _BUILT.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files
