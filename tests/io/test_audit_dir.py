"""A saved audit directory is replaced whole: a SIGKILL at any point leaves the old or the new one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.result import AuditResult

REPO = Path(__file__).resolve().parents[2]

# The child saves the "new" audit over the "old" one and stops at a chosen point of the save
# (a wrapped helper writes a signal file, then sleeps) so the parent can SIGKILL it right there.
CHILD = """
import sys, time
from pathlib import Path
import dataaudit.io.atomic as atomic_module
import dataaudit.io.audit_store as store_module
from tests.io.test_audit_dir import make_result

directory, point, signal_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])

def stop_here():
    signal_file.write_text("ready")
    time.sleep(60)

def wrap(name, *, after=False, module=store_module):
    original = getattr(module, name)
    def wrapped(*args, **kwargs):
        if not after:
            stop_here()
        value = original(*args, **kwargs)
        if after:
            stop_here()
        return value
    setattr(module, name, wrapped)

if point == "while_writing":
    wrap("write_text_atomic")          # frames written, findings not yet
elif point == "before_swap":
    wrap("swap_in", module=atomic_module)                # staging complete, old audit still in place
elif point == "after_swap":
    wrap("exchange", after=True, module=atomic_module)   # swapped, the old audit not yet removed
make_result("new", 5).save(directory)
"""


def make_result(version: str, n: int) -> AuditResult:
    """An audit whose every file says which version it belongs to."""
    rows = pl.DataFrame({"row": list(range(n)), "version": [version] * n})
    findings = pl.DataFrame([{"row": row, "check": "duplicate", "kind": "exact", "score": 0.0, "severity": "warning",
                              "cluster": 0, "group": None, "reason": version, "suggestion": None,
                              "suggested_value": None} for row in range(n)], schema=FINDING_SCHEMA)
    clusters = pl.DataFrame({"cluster": [0], "version": [version]})
    return AuditResult(rows=rows, findings=findings, clusters=clusters, summary={"version": version, "records": n})


def read_version(directory: Path) -> str:
    """The one version every file of the directory belongs to (fails on a mix)."""
    loaded = AuditResult.load(directory)
    version = loaded.summary["version"]
    assert loaded.rows.get_column("version").unique().to_list() == [version]
    assert loaded.clusters.get_column("version").to_list() == [version]
    assert loaded.findings.get_column("reason").unique().to_list() == [version]
    assert loaded.rows.height == loaded.findings.height == loaded.summary["records"]
    return version


def kill_during_save(directory: Path, point: str, signal_file: Path) -> None:
    """Run a child that saves the "new" audit over ``directory`` and SIGKILL it at ``point``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), point, str(signal_file)], env=env, cwd=REPO)
    deadline = time.monotonic() + 60
    while not signal_file.exists():
        assert child.poll() is None, "the child ended before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def leftovers(directory: Path) -> list[str]:
    """Hidden siblings of ``directory``: the staging folders (and a parked old audit) of its saves."""
    return sorted(entry.name for entry in directory.parent.iterdir() if entry.name.startswith(f".{directory.name}."))


@pytest.mark.parametrize("point, expected", [("while_writing", "old"), ("before_swap", "old"), ("after_swap", "new")])
def test_sigkill_during_save_leaves_a_whole_audit(tmp_path, point, expected):
    directory = tmp_path / "audit"
    make_result("old", 3).save(directory)
    (directory / "notes.txt").write_text("kept")
    (tmp_path / ".audit.mine.tmp").mkdir()  # not a staging name: never touched
    kill_during_save(directory, point, tmp_path / "signal")
    assert read_version(directory) == expected
    assert (directory / "notes.txt").read_text() == "kept"
    [staging] = [name for name in leftovers(directory) if name != ".audit.mine.tmp"]  # the dead child's
    # The next save completes over whatever the kill left, and removes the dead writer's folder.
    make_result("third", 2).save(directory)
    assert read_version(directory) == "third"
    assert leftovers(directory) == [".audit.mine.tmp"], staging


def test_a_new_cli_audit_after_a_killed_save_leaves_no_staging_folder(hashing_cli, tmp_path):
    from dataaudit.cli import main
    from tests.test_baseline import RECORDS

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    directory = tmp_path / "audit"
    make_result("old", 3).save(directory)
    kill_during_save(directory, "before_swap", tmp_path / "signal")
    assert len(leftovers(directory)) == 1
    outcome = hashing_cli.invoke(main, ["audit", str(data), "--out", str(directory), "--no-cache", "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    assert leftovers(directory) == []
    audit = AuditResult.load(directory)
    assert audit.rows.height == len(RECORDS) and audit.summary["dataset"]["path"] == str(data)
    assert (directory / "report.html").is_file()


def test_save_carries_other_files_over_and_replaces_audit_files(tmp_path):
    directory = tmp_path / "audit"
    make_result("old", 3).save(directory)
    (directory / "finetune").mkdir()
    (directory / "finetune" / "summary.json").write_text(json.dumps({"kept": True}))
    make_result("new", 4).save(directory)
    assert read_version(directory) == "new"
    assert json.loads((directory / "finetune" / "summary.json").read_text()) == {"kept": True}
    assert not [entry for entry in tmp_path.iterdir() if entry.name.startswith(".")]  # no staging left behind


def test_fallback_swap_is_recovered_after_a_kill_between_its_renames(tmp_path, monkeypatch):
    """Where no atomic exchange exists, a kill between the two renames leaves the old audit
    beside the target; the next save puts it back first."""
    import dataaudit.io.atomic as atomic_module

    directory = tmp_path / "audit"
    make_result("old", 3).save(directory)
    os.rename(directory, tmp_path / ".audit.old")  # what the first rename leaves
    monkeypatch.setattr(atomic_module, "exchange", lambda left, right: False)
    make_result("new", 2).save(directory)
    assert read_version(directory) == "new"
    assert not (tmp_path / ".audit.old").exists()


def test_a_parked_old_audit_beside_a_complete_one_is_removed(tmp_path, monkeypatch):
    """A kill after the fallback's second rename leaves ``.NAME.old`` beside the new audit."""
    directory = tmp_path / "audit"
    make_result("old", 3).save(directory)
    make_result("parked", 2).save(tmp_path / ".audit.old")
    make_result("new", 2).save(directory)
    assert read_version(directory) == "new"
    assert leftovers(directory) == []
