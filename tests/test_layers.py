"""The import contracts in pyproject.toml hold, and they catch a deliberately wrong import.

CI runs ``lint-imports``; these tests check the same contracts through import-linter's Python
API on the graph grimp builds (function-local imports counted, ``TYPE_CHECKING`` ones not),
then add one upward or cyclic edge to a copy and expect the contract to break.
"""

from __future__ import annotations

import copy
from pathlib import Path

import grimp
import pytest
import tomllib
from importlinter.configuration import configure
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.layers import LayersContract

REPO = Path(__file__).resolve().parents[1]
SETTINGS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
configure()  # import-linter's own settings (its timer), as its CLI sets them
CONTRACT_TYPES = {"layers": LayersContract, "acyclic_siblings": AcyclicSiblingsContract}


def _contract(kind: str):
    (options,) = [contract for contract in SETTINGS["contracts"] if contract["type"] == kind]
    options = _as_read(options)
    return CONTRACT_TYPES[kind](name=kind, session_options={"root_packages": ["dataaudit"]}, contract_options=options)


def _as_read(options: dict) -> dict:
    """Contract options as import-linter's own TOML reader hands them over (booleans as strings)."""
    return {key: str(value).lower() if isinstance(value, bool) else value for key, value in options.items()
            if key not in ("name", "type")}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    assert SETTINGS["exclude_type_checking_imports"] is True
    return grimp.build_graph("dataaudit", exclude_type_checking_imports=True, cache_dir=None)


def test_the_contracts_list_no_exceptions():
    for contract in SETTINGS["contracts"]:
        assert not contract.get("ignore_imports"), contract["name"]


@pytest.mark.parametrize("kind", sorted(CONTRACT_TYPES))
def test_the_package_keeps_its_contracts(graph, kind):
    assert _contract(kind).check(copy.deepcopy(graph), verbose=False).kept


@pytest.mark.parametrize("importer, imported", [
    ("dataaudit.errors", "dataaudit.cli"),                # the lowest layer reaching the top
    ("dataaudit.features.tokens", "dataaudit.finetune.models"),  # the edge model_files removed
    ("dataaudit.report.html", "dataaudit.export"),        # two siblings of one layer
    ("dataaudit.io.load", "dataaudit.result"),            # persistence reaching back up
])
def test_a_wrong_import_breaks_the_layers(graph, importer, imported):
    wrong = copy.deepcopy(graph)
    wrong.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    assert not _contract("layers").check(wrong, verbose=False).kept


def test_a_cycle_between_sibling_modules_breaks_the_acyclic_contract(graph):
    # checks.duplicate imports features.pairs; the reverse makes checks <-> features a cycle.
    wrong = copy.deepcopy(graph)
    assert wrong.direct_import_exists(importer="dataaudit.checks.duplicate", imported="dataaudit.features.pairs")
    wrong.add_import(importer="dataaudit.features.pairs", imported="dataaudit.checks.duplicate")
    assert not _contract("acyclic_siblings").check(wrong, verbose=False).kept


def test_a_scratch_module_importing_a_higher_layer_is_caught(tmp_path):
    """A real file, not just an edge: a copy of the package with one function-local upward import."""
    import json
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "dataaudit"
    shutil.copytree(REPO / "dataaudit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "severity.py").write_text((copy / "severity.py").read_text(encoding="utf-8")
                                      + "\n\ndef _scratch():\n    from dataaudit.result import AuditResult\n\n"
                                      "    return AuditResult\n", encoding="utf-8")
    (options,) = [contract for contract in SETTINGS["contracts"] if contract["type"] == "layers"]
    code = """
import json, sys
sys.path.insert(0, sys.argv[1])
import grimp
from importlinter.configuration import configure
from importlinter.contracts.layers import LayersContract
configure()
graph = grimp.build_graph("dataaudit", exclude_type_checking_imports=True, cache_dir=None)
assert graph.find_modules_that_directly_import("dataaudit.result") >= {"dataaudit.severity"}
options = json.loads(sys.argv[2])
contract = LayersContract(name="layers", session_options={"root_packages": ["dataaudit"]}, contract_options=options)
print(contract.check(graph, verbose=False).kept)
"""
    found = subprocess.run([sys.executable, "-c", code, str(tmp_path), json.dumps(_as_read(options))], capture_output=True,
                           text=True, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "False"


#: The most lines one module of the package may hold (issue #30): past it, split along a seam.
MAX_MODULE_LINES = 500


def test_no_module_of_the_package_exceeds_the_line_limit():
    lengths = {path.relative_to(REPO).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for path in sorted((REPO / "dataaudit").rglob("*.py"))}
    assert len(lengths) > 100  # the walk found the package, not an empty folder
    offenders = {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines (split them along a seam): {offenders}"
