"""In-memory inputs (polars, pandas, datasets, lists of dicts) and hub names offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import polars as pl
import pytest

from dataaudit.errors import InputError, UsageError
from dataaudit.io.load import load
from dataaudit.result import AuditResult

from .test_sources import RECORDS, fast_audit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def audit_rows(data, tmp_path, name):
    result = fast_audit(data)
    result.save(tmp_path / name)
    return pl.read_parquet(tmp_path / name / "rows.parquet"), result


@pytest.fixture
def from_file(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    rows, _ = audit_rows(path, tmp_path, "file")
    return rows


def test_polars_frame_gives_the_rows_of_the_file(from_file, tmp_path):
    rows, _ = audit_rows(pl.DataFrame(RECORDS), tmp_path, "polars")
    assert rows.equals(from_file)
    assert "source_file" not in rows.columns  # one input: rows.parquet as before shards existed


def test_pandas_frame_gives_the_rows_of_the_file(from_file, tmp_path):
    pandas = pytest.importorskip("pandas")
    rows, _ = audit_rows(pandas.DataFrame(RECORDS), tmp_path, "pandas")
    assert rows.equals(from_file)


def test_hf_dataset_gives_the_rows_of_the_file_and_exports_filtered(from_file, tmp_path):
    datasets = pytest.importorskip("datasets")
    hf = datasets.Dataset.from_list(RECORDS)
    rows, result = audit_rows(hf, tmp_path, "hf")
    assert rows.equals(from_file)
    assert load(datasets.DatasetDict({"train": hf})).frame.height == len(RECORDS)
    kept = result.export(dataset=hf)
    assert isinstance(kept, datasets.Dataset) and kept.features == hf.features
    assert kept.to_list() == RECORDS[:14]  # the two exact copies at the end are dropped
    rebuilt = AuditResult.load(tmp_path / "hf").export(dataset=pl.DataFrame(RECORDS))
    assert rebuilt.to_list() == RECORDS[:14]


def test_list_of_dicts_and_field_mapping(tmp_path):
    records = [{"q": record["prompt"], "a": record["completion"]} for record in RECORDS[:3]]
    dataset = load(records, prompt_field="q", response_field="a")
    assert dataset.frame.get_column("response").to_list() == [record["completion"] for record in RECORDS[:3]]
    frame = load(pl.DataFrame(records), prompt_field="q", response_field="a")
    assert frame.frame.get_column("prompt").to_list() == dataset.frame.get_column("prompt").to_list()


def test_an_unknown_object_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot audit a int"):
        load(3)
    datasets = pytest.importorskip("datasets")
    with pytest.raises(UsageError, match="splits a, b"):
        load(datasets.DatasetDict({"a": datasets.Dataset.from_list(RECORDS[:1]), "b": datasets.Dataset.from_list(RECORDS[:1])}))


def test_hub_name_without_a_local_copy_fails_fast_in_one_line(tmp_path):
    """No network is touched: the hub cache is empty and the error comes at once, on one line."""
    pytest.importorskip("datasets")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=REPO, NO_COLOR="1")
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "dataaudit.cli", "audit", "hf:someone/no-such-dataset:train",
                                "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: hf:someone/no-such-dataset:train: not available offline")
    assert time.monotonic() - started < 60
    assert "HF_HUB_OFFLINE" not in os.environ or os.environ["HF_HUB_OFFLINE"] == "1"


def test_hub_name_loads_a_local_dataset_repository(tmp_path, monkeypatch):
    """``hf:`` goes through ``datasets.load_dataset``: a cloned dataset repository works offline."""
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "train.jsonl").write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    dataset = load(f"hf:{repo}:train")
    assert dataset.frame.get_column("prompt").to_list() == [record["prompt"] for record in RECORDS]
    assert dataset.path == f"hf:{repo}:train"
    with pytest.raises(InputError, match="not available offline"):
        load(f"hf:{repo}:nope")
