"""The memory check: estimate before allocating, compare with what is available, refuse clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dataaudit.cli import main
from dataaudit.embed import CachingEmbedder, HashingEmbedder, NullCache
from dataaudit.errors import DataAuditError, ResourceError, UsageError
from dataaudit.resources import (
    MEMORY_LIMIT_ENV,
    MODEL_BYTES,
    MemoryBudget,
    available_memory,
    check_audit_memory,
    check_memory,
    estimate_audit_memory,
    parse_size,
)
from dataaudit.runner import audit
from tests.conftest import FixedClusterPipeline, make_dataset

GB = 1 << 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024", 1024), ("512MB", 512 * 10**6), ("8GiB", 8 * GB), ("1.5 gb", 1_500_000_000), ("2k", 2000),
     ("1e9", 10**9), ("off", None), ("Unlimited", None)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "12 parsecs", "-5GB", "GB"])
def test_a_bad_size_is_a_usage_error_naming_the_variable(text):
    with pytest.raises(UsageError, match=MEMORY_LIMIT_ENV):
        parse_size(text)


def fake_system(tmp_path, *, meminfo_kb=None, cgroup_line="0::/", files=None):
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    cgroup.mkdir()
    if meminfo_kb is not None:
        (proc / "meminfo").write_text(f"MemTotal:       99999999 kB\nMemAvailable:   {meminfo_kb} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup_line + "\n")
    for relative, text in (files or {}).items():
        path = cgroup / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {"proc": proc, "cgroup": cgroup, "environ": {}}


def test_available_memory_reads_meminfo(tmp_path):
    budget = available_memory(**fake_system(tmp_path, meminfo_kb=4 * 1024 * 1024))
    assert budget == MemoryBudget(available=4 * GB, source="available system memory")


def test_a_lower_cgroup_limit_wins(tmp_path):
    system = fake_system(tmp_path, meminfo_kb=16 * 1024 * 1024, files={"memory.max": str(2 * GB), "memory.current": str(GB // 2)})
    assert available_memory(**system) == MemoryBudget(available=GB + GB // 2, source="container (cgroup) memory limit")


def test_an_unlimited_cgroup_is_ignored(tmp_path):
    system = fake_system(tmp_path, meminfo_kb=1024 * 1024, files={"memory.max": "max\n", "memory.current": "123"})
    assert available_memory(**system).available == GB


def test_a_parent_cgroup_limit_applies_to_its_children(tmp_path):
    system = fake_system(tmp_path, meminfo_kb=16 * 1024 * 1024, cgroup_line="0::/jobs/this-job",
                         files={"jobs/memory.max": str(3 * GB), "jobs/memory.current": str(GB),
                                "jobs/this-job/memory.max": "max", "jobs/this-job/memory.current": str(GB)})
    assert available_memory(**system).available == 2 * GB


def test_cgroup_v1_limit(tmp_path):
    system = fake_system(tmp_path, meminfo_kb=16 * 1024 * 1024,
                         files={"memory/memory.limit_in_bytes": str(GB), "memory/memory.usage_in_bytes": "0"})
    assert available_memory(**system).available == GB
    unlimited = fake_system(tmp_path / "v1", meminfo_kb=1024, files={"memory/memory.limit_in_bytes": str(2**63 - 4096)})
    assert available_memory(**unlimited).available == 1024 * 1024


def test_the_environment_overrides_detection(tmp_path):
    system = fake_system(tmp_path, meminfo_kb=1024)
    system["environ"] = {MEMORY_LIMIT_ENV: "64GB"}
    assert available_memory(**system) == MemoryBudget(available=64 * 10**9, source=MEMORY_LIMIT_ENV)
    system["environ"] = {MEMORY_LIMIT_ENV: "off"}
    assert available_memory(**system).available is None


def test_estimate_grows_with_every_input():
    base = estimate_audit_memory(rows=10_000)
    assert estimate_audit_memory(rows=20_000).total > base.total
    assert estimate_audit_memory(rows=10_000, dim=1024).total > base.total
    assert estimate_audit_memory(rows=10_000, knn_k=100).total > base.total
    assert estimate_audit_memory(rows=10_000, production_rows=5_000).total > base.total
    assert estimate_audit_memory(rows=10_000, text_bytes=100 << 20).total > base.total
    assert estimate_audit_memory(rows=10_000, classes=150).total > base.total
    assert estimate_audit_memory(rows=10_000, responses=False).total < base.total
    assert base.total - estimate_audit_memory(rows=10_000, load_model=False).total == MODEL_BYTES
    assert estimate_audit_memory(rows=0).total > 0 and estimate_audit_memory(rows=1, knn_k=30).parts["knn_graphs"] >= 0


def test_estimate_orders_of_magnitude():
    """A sample-sized audit fits in a laptop; ten million rows of MiniLM vectors do not fit in 32 GB."""
    assert estimate_audit_memory(rows=3_000, text_bytes=2 << 20).total < 2 * GB
    assert estimate_audit_memory(rows=10_000_000, text_bytes=5 << 30).total > 32 * GB


def test_check_memory_message_names_estimate_budget_and_remedy():
    estimate = estimate_audit_memory(rows=10_000_000, text_bytes=5 << 30)
    with pytest.raises(ResourceError) as error:
        check_memory(estimate, MemoryBudget(available=8 * GB, source="container (cgroup) memory limit"), what="an audit of 10,000,000 rows")
    message = str(error.value)
    assert "an audit of 10,000,000 rows" in message and "8.0 GB is available (container (cgroup) memory limit)" in message
    assert "embeddings" in message and "sample" in message and MEMORY_LIMIT_ENV in message
    assert "\n" not in message and isinstance(error.value, DataAuditError) and error.value.exit_code == 3
    check_memory(estimate, MemoryBudget(available=None, source="unknown"))  # unknown: no refusal
    check_memory(estimate_audit_memory(rows=10), MemoryBudget(available=8 * GB, source="x"))


def test_model_cost_counts_only_when_a_model_will_run():
    dataset = make_dataset(["a", "b", "c"], ["x", "y", "z"])
    vectors = {"prompt": np.ones((3, 8), np.float32), "response": np.ones((3, 8), np.float32)}

    class SomeModel:
        model_id = "some-model"

    def parts(**kwargs):
        return check_audit_memory(dataset, **kwargs).parts

    assert "embedding_model" not in parts(embedder=HashingEmbedder())
    assert "embedding_model" not in parts(embedder=CachingEmbedder(embedder=HashingEmbedder(dim=64), cache=NullCache()))
    assert "embedding_model" in parts(embedder=SomeModel())
    assert "embedding_model" not in parts(embedder=SomeModel(), embeddings=vectors)
    assert "embedding_model" in parts(embedder=SomeModel(), embeddings=vectors, production=make_dataset(["p"]))
    assert check_audit_memory(dataset, embedder=HashingEmbedder(dim=64)).parts["embeddings"] == 4 * 3 * 64 * 4
    assert check_audit_memory(dataset, embedder=SomeModel(), embeddings=vectors).parts["embeddings"] == 4 * 3 * 8 * 4


class Refuses:
    """An embedder that must never be reached: the audit has to stop before embedding."""

    model_id = "refuses"

    def embed(self, texts, *, progress=None):
        raise AssertionError("embedded although the memory check should have refused")


def test_audit_refuses_before_allocating_anything(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1MB")
    with pytest.raises(ResourceError, match="not enough memory for an audit of 6 rows"):
        audit(make_dataset([f"p{i}" for i in range(6)]), embedder=Refuses(), cluster_pipeline=FixedClusterPipeline())


def test_audit_runs_when_the_check_is_off(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "off")
    result = audit(make_dataset(["a", "b"]), checks=[], embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline())
    assert result.rows.height == 2


def test_cli_prints_one_line_and_exits_3_without_writing(monkeypatch, tmp_path):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1MB")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": "c"}) + "\n" for i in range(5)))
    result = CliRunner().invoke(main, ["audit", str(data), "--out", str(tmp_path / "out"), "--no-cache", "-q"])
    assert result.exit_code == 3
    assert result.output.startswith("error: not enough memory") and result.output.count("\n") == 1
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_cli_reports_a_bad_limit_as_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "plenty")
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "p", "completion": "c"}\n')
    result = CliRunner().invoke(main, ["audit", str(data), "--out", str(tmp_path / "out"), "--no-cache", "-q"])
    assert result.exit_code == 2 and MEMORY_LIMIT_ENV in result.output
