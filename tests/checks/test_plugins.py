"""A third-party check package, pip-installed for real, is found through its entry point and
treated like a built-in: listed, run, reported, configured, exported and relabelled."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataaudit.checks import ENTRY_POINT_GROUP, available_checks, relabel_kinds
from dataaudit.cli import main
from dataaudit.testing import check_contract

PLUGIN = Path(__file__).resolve().parents[1] / "data" / "plugin_pkg"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """``pip install`` the package into a folder put on ``sys.path``: found only through its metadata."""
    import importlib
    import importlib.metadata

    import dataaudit.checks as checks_module
    from dataaudit.checks.base import REGISTRY

    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("plugin") / "plugin_pkg"
    shutil.copytree(PLUGIN, source)  # the build writes build/ and egg-info beside the sources: not into the repository
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "--target", str(target), str(source)], check=True, capture_output=True)
    assert "labelcase" not in available_checks()  # nothing registers it but the installed metadata
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        entry = [e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == "labelcase"]
        assert entry and entry[0].dist.name == "dataaudit-labelcase"
        yield target
    finally:
        sys.path.remove(str(target))
        REGISTRY.pop("labelcase", None)
        checks_module._loaded_entry_points.clear()
        sys.modules.pop("dataaudit_labelcase", None)


def _data(tmp_path: Path) -> Path:
    labels = ["card arrival", "lost card", "Card Arrival", "lost card ", "card arrival", "LOST CARD"]
    records = [{"text": f"my card {word} problem number {i}", "label": labels[i % len(labels)]}
               for i, word in enumerate(["arrived", "lost", "late", "stolen", "missing", "delayed"] * 5)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def _fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text('[embed]\nname = "hashing"\n[cluster.reducer]\nname = "none"\n[cluster.mapper]\nname = "pca"\n'
                    '[checks.labelcase]\nscore = 0.2\n', encoding="utf-8")
    return path


def test_an_installed_plugin_is_listed_run_reported_exported_and_relabelled(installed_plugin, tmp_path):
    runner = CliRunner()
    listed = runner.invoke(main, ["checks"])
    assert listed.exit_code == 0 and "labelcase" in listed.output and "kinds: label_case" in listed.output
    assert ("labelcase", "label_case") in relabel_kinds()
    assert list(available_checks())[-1] == "labelcase"  # after the built-ins
    check_contract(available_checks()["labelcase"])

    data, out = _data(tmp_path), tmp_path / "audit"
    run = runner.invoke(main, ["audit", str(data), "--checks", "duplicate,labelcase", "--config", str(_fast_config(tmp_path)),
                               "--out", str(out), "--no-cache", "-q"])
    assert run.exit_code == 0, run.output
    findings = [json.loads(line) for line in (out / "findings.jsonl").read_text().splitlines()]
    plugin_findings = [f for f in findings if f["check"] == "labelcase"]
    assert {f["row"] for f in plugin_findings} == {i for i in range(30) if i % 6 in (2, 3, 5)}
    assert all(f["score"] == 0.2 for f in plugin_findings)  # its [checks.labelcase] table reached it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["checks"]["labelcase"] == {"score": 0.2}
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "labelcase" in report and "two names for one class" in report
    assert f'<p class="labelcase-evidence">{len(plugin_findings)} label(s)' in report  # its own template file

    clean, rejected, changes = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl", tmp_path / "changes.jsonl"
    exported = runner.invoke(main, ["export", str(data), "--audit", str(out), "--out", str(clean), "--rejected",
                                    str(rejected), "--relabel", "--changes", str(changes), "--drop", "duplicate"])
    assert exported.exit_code == 0, exported.output
    kept = [json.loads(line)["label"] for line in clean.read_text().splitlines()]
    assert len(kept) == 30 and set(kept) == {"card arrival", "lost card"}
    logged = [json.loads(line) for line in changes.read_text().splitlines()]
    assert len(logged) == len(plugin_findings)

    dropped = runner.invoke(main, ["export", str(data), "--audit", str(out), "--out", str(tmp_path / "c2.jsonl"),
                                   "--rejected", str(tmp_path / "r2.jsonl"), "--drop", "labelcase"])
    assert dropped.exit_code == 0 and f"labelcase {len(plugin_findings)}" in dropped.output


def test_a_plugin_that_fails_to_load_is_logged_not_fatal(monkeypatch, caplog):
    import importlib.metadata

    import dataaudit.checks as checks_module

    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_module_xyz:Check", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken] if group == ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(checks_module, "_loaded_entry_points", set())
    monkeypatch.setattr(checks_module, "PLUGIN_ERRORS", {})
    names = list(available_checks())
    assert "broken" not in names and "duplicate" in names
    assert "ModuleNotFoundError" in checks_module.PLUGIN_ERRORS["broken"]
    assert "cannot load the check plug-in broken" in caplog.text


def test_every_builtin_check_declares_its_kinds_metadata_in_one_place():
    from collections.abc import Mapping

    from dataaudit.checks import BUILTIN_CHECKS, Kind, target_kinds

    for name in BUILTIN_CHECKS:
        kinds = available_checks()[name].kinds
        assert isinstance(kinds, Mapping) and kinds, name
        assert all(isinstance(spec, Kind) and spec.suggestion for spec in kinds.values()), name
    builtin = set(BUILTIN_CHECKS)
    # The sets that used to be hard-coded (RELABEL_KINDS, LEARNABILITY_KINDS) now follow from the metadata.
    assert {key for key in relabel_kinds() if key[0] in builtin} == {
        ("conflict", "label_noise"), ("conflict", "label_spelling"), ("conflict", "label_conflict")}
    assert {kind for check, kind in target_kinds() if check in builtin} == {
        "label_noise", "label_conflict", "answer_conflict", "response_conflict"}
