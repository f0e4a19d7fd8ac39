"""Which leftovers of killed saves are removed beside an audit directory, and that nothing else is."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from dataaudit.io.staging import STALE_SECONDS, _host_tag, is_stale_staging, make_staging, remove_stale_staging


@pytest.fixture
def dead_pid():
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def test_a_dead_writers_folder_is_removed_and_a_live_ones_kept(tmp_path, dead_pid):
    out = tmp_path / "audit"
    dead = tmp_path / f".audit.{dead_pid}.{_host_tag()}.abcd_123.tmp"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "rows.parquet").write_bytes(b"x")
    mine = make_staging(out)  # this process: alive
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        other = tmp_path / f".audit.{parent.pid}.{_host_tag()}.zzzzzzzz.tmp"
        other.mkdir()
        assert remove_stale_staging(out) == [dead]
        assert not dead.exists() and mine.is_dir() and other.is_dir()
    finally:
        parent.kill()
        parent.wait(timeout=30)


def test_only_exact_staging_names_of_this_directory_qualify(tmp_path, dead_pid):
    out = tmp_path / "audit"
    tag = _host_tag()
    kept = [
        f".audit.{dead_pid}.{tag}.abcdefgh.tmp.bak",  # another suffix
        f".audit.{dead_pid}.{tag}.abcdefgh",          # no suffix
        f".audit2.{dead_pid}.{tag}.abcdefgh.tmp",     # another directory's
        f".audit.{dead_pid}.{tag}.ABCDEFGH.tmp",      # not mkdtemp's alphabet
        f"audit.{dead_pid}.{tag}.abcdefgh.tmp",       # not hidden
        ".audit.notes.tmp",                           # a person's folder
    ]
    for name in kept:
        (tmp_path / name).mkdir()
        _age(tmp_path / name, 2 * STALE_SECONDS)
    stale_file = tmp_path / f".audit.{dead_pid}.{tag}.abcdefgh.tmp"
    stale_file.write_text("a file, not a staging folder")
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / f".audit.{dead_pid}.{tag}.linkedxx.tmp"
    link.symlink_to(target, target_is_directory=True)
    assert remove_stale_staging(out) == []
    assert all((tmp_path / name).is_dir() for name in kept)
    assert stale_file.is_file() and link.is_symlink() and target.is_dir()


def test_unverifiable_writers_are_judged_by_age(tmp_path):
    """An older dataaudit's ``.NAME.<random>.tmp``, or another host's, waits out STALE_SECONDS."""
    out = tmp_path / "audit"
    recent_old_style = tmp_path / ".audit.k2j4_x9q.tmp"
    aged_old_style = tmp_path / ".audit.a8d7e6f5.tmp"
    other_host = tmp_path / f".audit.1.{'0' * 8 if _host_tag() != '0' * 8 else '1' * 8}.abcdefgh.tmp"
    for folder in (recent_old_style, aged_old_style, other_host):
        folder.mkdir()
    _age(aged_old_style, STALE_SECONDS + 60)
    assert not is_stale_staging(other_host, out)
    assert remove_stale_staging(out) == [aged_old_style]
    assert recent_old_style.is_dir() and other_host.is_dir()
    _age(other_host, STALE_SECONDS + 60)
    assert remove_stale_staging(out) == [other_host]


def test_a_parked_old_audit_is_removed_only_beside_a_present_audit(tmp_path):
    out = tmp_path / "audit"
    old = tmp_path / ".audit.old"
    old.mkdir()
    assert remove_stale_staging(out) == []  # the audit is missing: the parked one is all there is
    assert old.is_dir()
    out.mkdir()
    assert remove_stale_staging(out) == [old]
    assert not old.exists()


def test_a_missing_parent_is_nothing_to_clean(tmp_path):
    assert remove_stale_staging(tmp_path / "no" / "such" / "audit") == []


def test_a_symlinked_audit_directory_is_cleaned_where_it_points(tmp_path, dead_pid):
    real = tmp_path / "real" / "audit"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    dead = real.parent / f".audit.{dead_pid}.{_host_tag()}.abcdefgh.tmp"
    dead.mkdir()
    beside_link = tmp_path / f".link.{dead_pid}.{_host_tag()}.abcdefgh.tmp"
    beside_link.mkdir()
    assert remove_stale_staging(tmp_path / "link") == [dead]
    assert beside_link.is_dir()  # the save never stages beside the link
