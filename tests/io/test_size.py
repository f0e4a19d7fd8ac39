"""Row counts and sizes of inputs read from metadata or newlines, and the memory check they feed."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from dataaudit.errors import ResourceError
from dataaudit.io.size import input_size
from dataaudit.runner import audit

RECORDS = [{"instruction": f"question {i}", "output": f"answer {i}"} for i in range(37)]


def _jsonl(records) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def test_jsonl_plain_gzipped_and_without_a_final_newline(tmp_path):
    data = _jsonl(RECORDS)
    (tmp_path / "a.jsonl").write_bytes(data)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "c.jsonl").write_bytes(data.rstrip(b"\n"))
    assert input_size(str(tmp_path / "a.jsonl")).rows == 37
    assert input_size(str(tmp_path / "a.jsonl")).text_bytes == len(data)
    assert input_size(str(tmp_path / "b.jsonl.gz")) == input_size(str(tmp_path / "a.jsonl"))
    assert input_size(str(tmp_path / "c.jsonl")).rows == 37


def test_parquet_arrow_and_a_folder_of_shards(tmp_path):
    frame = pl.DataFrame(RECORDS)
    folder = tmp_path / "shards"
    folder.mkdir()
    frame.slice(0, 20).write_parquet(folder / "part-0.parquet")
    frame.slice(20).write_ipc(folder / "part-1.arrow")
    assert input_size(str(folder / "part-0.parquet")).rows == 20
    assert input_size(str(folder / "part-1.arrow")).rows == 17
    assert input_size(str(folder)).rows == 37
    assert input_size(str(folder / "*.parquet")).rows == 20


def test_a_save_to_disk_folder_counts_its_arrow_streams(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "saved"))
    assert input_size(str(tmp_path / "saved")).rows == 37


def test_formats_that_need_parsing_are_not_counted(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(RECORDS, indent=2))
    pl.DataFrame(RECORDS).write_csv(tmp_path / "a.csv")
    assert input_size(str(tmp_path / "a.json")) is None
    assert input_size(str(tmp_path / "a.csv")) is None
    assert input_size(str(tmp_path / "missing.jsonl")) is None


def test_the_audit_refuses_an_input_that_cannot_fit_before_reading_it(tmp_path, monkeypatch):
    """A file the parser would reject still gets the memory error: the check came first."""
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"not json at all\n" * 5_000)
    monkeypatch.setenv("DATAAUDIT_MEMORY_LIMIT", "1MB")
    with pytest.raises(ResourceError, match="about 5,000 rows"):
        audit(str(path))
