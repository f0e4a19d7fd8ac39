"""The README's test command: what it installs covers what the tests import, and CI runs it verbatim.

A fresh clone runs ``pip install -e ".[test]" && python -m pytest -q`` right after the quick
start; every module a test imports without ``pytest.importorskip`` must then come from the
package's dependencies or its ``test`` extra (or what those pull in), or the suite fails with
"No module named ...".
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata

import pytest

from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
requirements = pytest.importorskip("packaging.requirements")


def _readme_block_after(heading_text: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index(heading_text):]
    return re.search(r"```bash\n(.*?)\n```", after, re.S).group(1).strip()


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", requirements.Requirement(requirement).name).lower()


def _installed_closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require (not their extras), as far as installed."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            required = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in required:
            requirement = requirements.Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_name(line))
    return seen


def _test_imports() -> set[str]:
    """Third-party top-level modules the test files import with an ``import`` statement (importorskip
    excluded; the checkout's own packages, which the tests import from the repository root, too)."""
    modules = set()
    for path in (REPO / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    first_party = {"tests"} | {path.name for path in REPO.iterdir() if (path / "__init__.py").is_file()}  # dataaudit, bench
    return {module for module in modules if module not in sys.stdlib_module_names} - first_party


def test_ci_runs_the_readme_test_command_verbatim():
    command = _readme_block_after("Run the tests")
    assert command == 'pip install -e ".[test]" && python -m pytest -q'
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert command in [line.strip() for line in ci.splitlines()]


def test_the_test_extra_covers_every_module_the_tests_import():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_name(line) for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]}
    available = _installed_closure(declared)
    providers = metadata.packages_distributions()
    missing = {}
    for module in sorted(_test_imports()):
        dists = {_name(dist) for dist in providers.get(module, [])}
        if not dists & available:
            missing[module] = sorted(dists) or ["(not installed here)"]
    assert not missing, f"tests import modules the README's test command does not install: {missing}"
