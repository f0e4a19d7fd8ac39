"""Shared test helpers: inline datasets, a fixed clustering, and a fast audit context."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pytest

from dataaudit.testing import FixedClusterPipeline

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"
REALDATA = REPO.parent / "shared" / "realdata"


def realdata(name: str) -> Path:
    """Path of a file in ../shared/realdata; skips the test where it is absent."""
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


#: GSM8K-style problems with worked solutions, for the duplicate and conflict tests.
GSM8K_QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell altogether?"
GSM8K_SOLUTION = "In May she sold 48 / 2 = 24 clips. Altogether she sold 48 + 24 = 72 clips.\n#### 72"
GSM8K_OTHERS = [
    ("Weng earns $12 an hour for babysitting. Yesterday she did 50 minutes of babysitting. How much did she earn?",
     "Weng earns 12 / 60 = 0.2 per minute. For 50 minutes she earned 0.2 x 50 = 10.\n#### 10"),
    ("Betty is saving money for a new wallet which costs $100. She has only half of the money she needs. How much more does she need?",
     "Betty has 100 / 2 = 50. She needs 100 - 50 = 50 more.\n#### 50"),
    ("James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
     "He writes 3 x 2 = 6 pages each time, 12 a week, so 12 x 52 = 624 pages.\n#### 624"),
]


def make_dataset(prompts: Sequence[str], responses: Sequence[str | None] | None = None, labels: Sequence[str] | None = None):
    """An in-memory dataset: prompt/completion records, or text/label when labels are given.

    No prompts gives an empty dataset (a file whose every line was skipped looks the same).
    """
    from dataaudit.io.load import from_records

    if labels is not None:
        records = [{"text": p, "label": l} for p, l in zip(prompts, labels)]
    else:
        responses = responses if responses is not None else [None] * len(prompts)
        records = [{"prompt": p, "completion": r} if r is not None else {"prompt": p} for p, r in zip(prompts, responses)]
    return from_records(records, skip_bad_lines=not records)


def make_context(dataset, *, cluster_labels: Sequence[int] | None = None, embedder=None, knn_k: int = 10, seed: int = 0):
    """An AuditContext over ``dataset`` with the fast hashing embedder and fixed clusters."""
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine

    return AuditContext(
        engine=LocalEngine(),
        dataset=dataset,
        embedder=embedder if embedder is not None else HashingEmbedder(),
        cluster_pipeline=FixedClusterPipeline(labels=cluster_labels),
        knn_k=knn_k,
        seed=seed,
    )


@pytest.fixture
def hashing_cli(monkeypatch):
    """The CLI with the hashing embedder and UMAP-free clustering: fast, and no model to load."""
    import dataaudit.cluster.pipeline
    import dataaudit.runner
    from dataaudit.cluster.mappers import PCAMapper
    from dataaudit.cluster.reducers import NoReducer

    pipeline = dataaudit.cluster.pipeline.ClusterPipeline
    monkeypatch.setattr(dataaudit.runner, "default_embedder", lambda **_: _hashing_embedder())
    monkeypatch.setattr(dataaudit.cluster.pipeline, "ClusterPipeline",
                        lambda **params: pipeline(reducer=NoReducer(), mapper=PCAMapper(), **params))
    from click.testing import CliRunner

    return CliRunner()


def _hashing_embedder():
    from dataaudit.embed import HashingEmbedder

    return HashingEmbedder()
