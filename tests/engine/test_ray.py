"""The Ray engine gives what the local engine gives: the same Dataset, vectors, kNN graph and audit.

One local Ray session with 2 CPUs serves the whole module (starting one takes seconds).
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

ray = pytest.importorskip("ray")

from dataaudit.embed import HashingEmbedder  # noqa: E402
from dataaudit.engine import LocalEngine, RayEngine  # noqa: E402
from dataaudit.errors import InputError  # noqa: E402
from dataaudit.io.load import LoadOptions, load  # noqa: E402
from dataaudit.neighbors import build_knn, exact_block_rows  # noqa: E402
from tests.conftest import REPO, SAMPLE_DATA  # noqa: E402

SKIP = LoadOptions(skip_bad_lines=True)

BANKING77 = REPO / "tests" / "data" / "banking77_subset" / "banking77_1000.jsonl"


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}})
    yield
    if started:
        ray.shutdown()


def assert_same_dataset(ours, theirs):
    assert ours.frame.equals(theirs.frame)
    assert (ours.path, ours.format, ours.container) == (theirs.path, theirs.format, theirs.container)
    assert ours.bad_lines == theirs.bad_lines and ours.blank_lines == theirs.blank_lines
    assert ours.terminators == theirs.terminators


MESSY_LINES = [
    b'\xef\xbb\xbf{"prompt": "first, after a BOM", "completion": "one"}\n',
    b'{"prompt": "crlf line", "completion": "two"}\r\n',
    b"\n",
    b'{"prompt": "broken json", "completion": \n',
    b'   \n',
    b'{"prompt": "bad utf-8 \xff", "completion": "x"}\n',
    b'{"prompt": "no completion key"}\n',
    b'{"prompt": "fine again", "completion": "three"}\n',
    b'["not", "an", "object"]\n',
    b'{"prompt": "last line has no newline", "completion": "four"}',
]


@pytest.mark.parametrize("chunk", [1, 37, 1 << 20])
def test_jsonl_read_in_byte_ranges_equals_the_local_load(tmp_path, chunk):
    path = tmp_path / "messy.jsonl"
    path.write_bytes(b"".join(MESSY_LINES * 3))
    theirs = load(path, skip_bad_lines=True)
    ours = RayEngine(read_chunk_bytes=chunk).load(path, SKIP)
    assert len(theirs) == 11 and len(theirs.bad_lines) == 11 and len(theirs.blank_lines) == 6
    assert_same_dataset(ours, theirs)
    with pytest.raises(InputError) as ray_error:
        RayEngine(read_chunk_bytes=chunk).load(path)
    with pytest.raises(InputError) as local_error:
        load(path)
    assert str(ray_error.value) == str(local_error.value) and ray_error.value.line == 4


def test_sample_data_read_in_ranges_equals_the_local_load():
    path = SAMPLE_DATA / "train.jsonl"
    assert_same_dataset(RayEngine(read_chunk_bytes=100_000).load(path, SKIP), load(path, skip_bad_lines=True))


def test_parquet_read_by_row_group_equals_the_local_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data.parquet"
    table = pa.table({"instruction": [f"question {i} ü" for i in range(23)], "input": [""] * 23,
                      "output": [f"answer {i}" if i % 5 else "" for i in range(23)], "score": [i / 3 for i in range(23)]})
    pq.write_table(table, path, row_group_size=4)
    assert pq.ParquetFile(path).metadata.num_row_groups == 6
    assert_same_dataset(RayEngine().load(path, SKIP), load(path, skip_bad_lines=True))


def test_inputs_that_are_not_split_are_read_by_the_local_reader(tmp_path):
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}]))
    assert_same_dataset(RayEngine().load(array), load(array))
    with pytest.raises(InputError, match="no such file"):
        RayEngine().load(tmp_path / "missing.jsonl")
    (tmp_path / "blank.jsonl").write_bytes(b"\n \n")
    with pytest.raises(InputError, match="file is empty"):
        RayEngine(read_chunk_bytes=1).load(tmp_path / "blank.jsonl")


def test_embedding_keeps_row_order_across_batches_and_replicas():
    texts = [f"text number {i} about {'cards' if i % 3 else 'loans'}" for i in range(203)]
    embedder = HashingEmbedder(dim=48)
    vectors = RayEngine(batch_size=17, num_workers=2).embed(embedder, texts)
    assert vectors.shape == (203, 48) and np.array_equal(vectors, embedder.embed(texts))


def test_exact_knn_on_the_cluster_is_build_knn_bit_for_bit():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6000, 16)).astype(np.float32)
    vectors[100:110] = vectors[5]  # exact duplicates: ties broken by index, as locally
    vectors[200] = 0.0  # an all-zero row has similarity 0 to everything
    assert exact_block_rows(len(vectors)) < len(vectors)  # several blocks, so several tasks
    ours, theirs = RayEngine(num_workers=2).knn(vectors, k=12), build_knn(vectors, k=12)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.array_equal(ours.similarities, theirs.similarities)


def test_bucketed_knn_past_the_exact_limit_finds_most_true_neighbours():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((30, 24))
    vectors = (centres[rng.integers(0, 30, 4000)] + 0.3 * rng.standard_normal((4000, 24))).astype(np.float32)
    vectors[10:14] = vectors[3]
    graph = RayEngine(exact_max_rows=1000, probes=4, num_workers=2).knn(vectors, k=10)
    exact = build_knn(vectors, k=10)
    assert graph.indices.shape == (4000, 10) and (graph.indices >= 0).all()
    assert not (graph.indices == np.arange(4000)[:, None]).any()
    assert (np.diff(graph.similarities, axis=1) <= 0).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(graph.indices, exact.indices)])
    assert recall > 0.9
    assert set(graph.indices[3]) >= {10, 11, 12, 13}


def test_map_frame_runs_a_row_function_in_order():
    frame = pl.DataFrame({"text": [f"row {i}" * (i % 4) for i in range(50)]})

    def lengths(part: pl.DataFrame) -> pl.DataFrame:
        return part.select(pl.col("text").str.len_chars().alias("length"))

    out = RayEngine(num_workers=2, batch_size=7).map_frame(lengths, frame)
    assert out.get_column("length").to_list() == [len(text) for text in frame.get_column("text").to_list()]


def fast_audit(data, *, engine, production=None):
    from dataaudit.cluster.mappers import PCAMapper
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.cluster.reducers import NoReducer
    from dataaudit.runner import audit

    pipeline = ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper(), seed=0, stability_resamples=1)
    return audit(data, production=production, embedder=HashingEmbedder(dim=64), cluster_pipeline=pipeline,
                 engine=engine, seed=0)


def assert_same_audit(ours, theirs):
    assert ours.rows.equals(theirs.rows)
    assert ours.findings.equals(theirs.findings)
    assert ours.clusters.equals(theirs.clusters)
    for name in ("coverage", "gaps", "cluster_coverage"):
        mine, other = getattr(ours, name, None), getattr(theirs, name, None)
        assert (mine is None) == (other is None) and (mine is None or mine.equals(other)), name
    assert ours.summary["dataset"] == theirs.summary["dataset"]
    assert ours.summary["issues_by_check"] == theirs.summary["issues_by_check"]


def test_the_sample_audit_finds_the_same_with_both_engines():
    engine = RayEngine(read_chunk_bytes=256 << 10, batch_size=500)
    train, production = SAMPLE_DATA / "train.jsonl", SAMPLE_DATA / "production.jsonl"
    ours = fast_audit(train, production=production, engine=engine)
    theirs = fast_audit(train, production=production, engine=LocalEngine())
    assert ours.summary["parameters"]["engine"] == "ray" and theirs.summary["parameters"]["engine"] == "local"
    assert ours.findings.height > 100  # the planted issues are there, not two empty results
    assert_same_audit(ours, theirs)


def test_a_banking77_subset_audits_the_same_with_both_engines():
    ours = fast_audit(BANKING77, engine=RayEngine(read_chunk_bytes=16 << 10, batch_size=128))
    theirs = fast_audit(BANKING77, engine="local")
    assert len(ours.rows) == 1000 and ours.summary["checks"]["conflict"]["status"] == "ok"
    assert_same_audit(ours, theirs)


def test_the_cli_audits_with_the_ray_engine(hashing_cli, tmp_path):
    from dataaudit.cli import main

    data, out = tmp_path / "banking.jsonl", tmp_path / "out"
    data.write_text("\n".join(BANKING77.read_text().splitlines()[:200]) + "\n")
    result = hashing_cli.invoke(main, ["audit", str(data), "--out", str(out), "--quiet", "--engine", "ray",
                                       "--checks", "duplicate,conflict,quality"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["engine"] == "ray" and summary["dataset"]["records"] == 200


@pytest.mark.slow
def test_minilm_replicas_embed_as_the_local_model_does():
    from dataaudit.embed import SentenceTransformerEmbedder

    texts = [line["text"] for line in map(json.loads, BANKING77.read_text().splitlines()[:40])]
    embedder = SentenceTransformerEmbedder()
    ours = RayEngine(batch_size=16, num_workers=1, use_gpu=False).embed(embedder, texts)
    theirs = embedder.embed(texts)
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-5
