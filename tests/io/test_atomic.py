"""Atomic outputs: all or nothing, with ordinary file permissions."""

import os

import pytest

from dataaudit.io.atomic import atomic_output, atomic_path


def test_new_file_gets_umask_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "a.txt") as stream:
            stream.write(b"x")
        with atomic_path(tmp_path / "b.txt") as temp:
            temp.write_bytes(b"y")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    with pytest.raises(RuntimeError):
        with atomic_output(target) as stream:
            stream.write(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    with atomic_output(target) as stream:
        stream.write(b"new\n")
    assert target.read_bytes() == b"new\n" and target.stat().st_mode & 0o777 == 0o640
