"""The engine registry and the local engine: exactly what the audit did before engines existed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from dataaudit.embed import HashingEmbedder
from dataaudit.engine import ENGINES, Engine, LocalEngine, RayEngine, make_engine
from dataaudit.errors import UsageError
from dataaudit.io.load import LoadOptions, load
from dataaudit.neighbors import build_knn
from tests.conftest import SAMPLE_DATA

SKIP = LoadOptions(skip_bad_lines=True)


def test_names_resolve_to_fresh_engines_and_instances_pass_through():
    assert set(ENGINES) == {"local", "ray"}
    assert isinstance(make_engine("local"), LocalEngine)
    assert isinstance(make_engine("ray"), RayEngine)
    engine = RayEngine(address="auto", num_workers=3)
    assert make_engine(engine) is engine
    assert isinstance(engine, Engine) and isinstance(LocalEngine(), Engine)


@pytest.mark.parametrize("bad", ["spark", "", 3])
def test_unknown_engines_are_usage_errors(bad):
    with pytest.raises(UsageError, match="engine"):
        make_engine(bad)


def test_the_ray_engine_only_stores_its_parameters():
    engine = RayEngine(address="ray://head:10001", num_workers=4, batch_size=256, use_gpu=False)
    assert (engine.address, engine.num_workers, engine.batch_size, engine.use_gpu) == ("ray://head:10001", 4, 256, False)
    with pytest.raises(TypeError):
        RayEngine("auto")  # keyword-only


def test_importing_dataaudit_and_its_engines_never_imports_ray():
    code = "import sys, dataaudit, dataaudit.engine, dataaudit.runner, dataaudit.cli; print('ray' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_a_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(UsageError, match=r"pip install 'dataaudit\[ray\]'"):
        RayEngine().knn(np.eye(4, dtype=np.float32), k=2)


def test_local_load_is_io_load():
    path = SAMPLE_DATA / "train.jsonl"
    engine_set, plain = LocalEngine().load(path, SKIP), load(path, skip_bad_lines=True)
    assert engine_set.frame.equals(plain.frame) and engine_set.fingerprint() == plain.fingerprint()


def test_local_embedding_and_knn_are_the_embedder_and_build_knn():
    texts = ["reset my password", "password reset please", "card arrived broken", "where is my card", "hello"] * 3
    embedder = HashingEmbedder(dim=32)
    vectors = LocalEngine().embed(embedder, texts)
    assert vectors.dtype == np.float32 and np.array_equal(vectors, embedder.embed(texts))
    graph, expected = LocalEngine().knn(vectors, k=4, seed=1), build_knn(vectors, k=4, seed=1)
    assert np.array_equal(graph.indices, expected.indices) and np.array_equal(graph.similarities, expected.similarities)


def test_local_map_frame_applies_the_function_once():
    frame = pl.DataFrame({"text": ["a", "bb", "ccc"]})
    out = LocalEngine().map_frame(lambda f: f.select(pl.col("text").str.len_chars().alias("length")), frame)
    assert out.get_column("length").to_list() == [1, 2, 3]


def test_local_map_frame_in_worker_processes_equals_one_process():
    """The quality check's real row function, spread over two spawned workers in many slices,
    gives the rows of one in-process call in the same order."""
    from functools import partial

    from dataaudit.checks.quality import QualityCheck, _issues_frame, _Vocabulary

    rows = [("Summarise the report", "The report says the quarter went"), ("Translate 'hi'", "N/A"),
            ("Email me", "Write to jane.doe@gmail.com"), ("Explain gravity", "As an AI language model, I think")] * 60
    from dataaudit.features.response_format import formats_frame

    frame = pl.DataFrame({"prompt": [p for p, _ in rows], "response": [r for _, r in rows],
                          "label": [None] * len(rows)}, schema={"prompt": pl.String, "response": pl.String, "label": pl.String})
    frame = frame.with_columns(formats_frame(frame.select(text="response")).get_column("format"))
    function = partial(_issues_frame, check=QualityCheck(), vocabulary=_Vocabulary.from_texts([t for row in rows for t in row]))
    alone = LocalEngine(workers=1).map_frame(function, frame)
    spread = LocalEngine(workers=2, parallel_min_rows=40).map_frame(function, frame)
    assert spread.height == frame.height and spread.equals(alone)
    assert sum(len(issues or []) for issues in alone.get_column("issues").to_list()) >= 3 * 60  # null: no issues


def test_local_map_frame_ships_a_lambda_and_keeps_an_unpicklable_function_in_process():
    import threading

    frame = pl.DataFrame({"text": ["a", "bb", "ccc"] * 20})
    engine = LocalEngine(workers=2, parallel_min_rows=10)
    out = engine.map_frame(lambda f: f.select(pl.col("text").str.len_chars()), frame)
    assert out.get_column("text").to_list() == [1, 2, 3] * 20
    lock = threading.Lock()

    def holding_a_lock(part):
        with lock:
            return part.select(pl.col("text").str.len_bytes())

    assert engine.map_frame(holding_a_lock, frame).get_column("text").to_list() == [1, 2, 3] * 20


def test_local_map_frame_in_a_script_without_a_main_guard(tmp_path):
    """Worker processes must not re-run the calling script (multiprocessing's spawn would, and
    fail on a script that does its work at top level, as many do)."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import polars as pl\n"
        "from dataaudit.engine.local import LocalEngine\n"
        "print('started')\n"
        "frame = pl.DataFrame({'text': ['a', 'bb', 'ccc'] * 20})\n"
        "out = LocalEngine(workers=2, parallel_min_rows=10).map_frame(\n"
        "    lambda f: f.select(pl.col('text').str.len_chars()), frame)\n"
        "print(sum(out.get_column('text').to_list()))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "120"]


def test_local_engine_key_ignores_worker_count():
    assert repr(LocalEngine(workers=2)) == repr(LocalEngine()) == "LocalEngine(exact_max_rows=20000)"
