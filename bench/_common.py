"""What the benches share: where the realdata sets are, reading JSONL, and the planted faults.

Run a bench from the repository root as a module, ``python -m bench.bench_duplicate_conflict``
(``nice -n 10`` on a shared machine): the checkout's own ``dataaudit`` and ``bench`` packages are
then importable as they are, in a git worktree too, without ``sys.path`` edits or an install.
Nothing here imports from ``tests/``; fixtures both use live in :mod:`dataaudit.testing`.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any, Iterator

#: The checkout this bench runs from.
REPO = Path(__file__).resolve().parents[1]

#: Prefixes people put before a question; planted in near-copies.
POLITE_PREFIXES = ("Please answer: ", "Question: ", "Can you help me with this? ", "Hi! ", "Solve this: ",
                   "Quick question - ")


def offline() -> None:
    """Never reach a model hub: every model a bench loads ships in an installed package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def realdata_dir() -> Path:
    """``$DATAAUDIT_REALDATA``, else the first ``shared/realdata`` beside the checkout or beside a
    folder above it (worktrees sit one level deeper); the nearest candidate when none exists."""
    override = os.environ.get("DATAAUDIT_REALDATA")
    if override:
        return Path(override)
    candidates = [up / "shared" / "realdata" for up in REPO.parents]
    return next((path for path in candidates if path.is_dir()), candidates[0])


#: The real public data sets the benches read (see its README.md).
REALDATA = realdata_dir()


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """The records of a JSONL file, one at a time; blank lines are skipped."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSONL file; blank lines are skipped."""
    return list(iter_jsonl(path))


def realdata_records(name: str) -> list[dict]:
    """The records of one realdata set, by file name (``"banking77.jsonl"``)."""
    return read_jsonl(REALDATA / name)


def typo(text: str, rng: random.Random) -> str:
    """One letter typo in one word of four letters or more: two letters swapped, one dropped or doubled."""
    words = list(re.finditer(r"[A-Za-z]{4,}", text))
    if not words:
        return text
    word = rng.choice(words)
    letters = list(word.group(0))
    position = rng.randrange(1, len(letters) - 1)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap":
        letters[position], letters[position + 1] = letters[position + 1], letters[position]
    elif kind == "drop":
        del letters[position]
    else:
        letters.insert(position, letters[position])
    return text[: word.start()] + "".join(letters) + text[word.end():]


def fast_context(dataset: Any) -> Any:
    """An audit context with the hashing embedder and one fixed cluster: a check's own cost on
    real rows, without the embedding model or UMAP (what the tests' ``make_context`` builds)."""
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from dataaudit.testing import FixedClusterPipeline

    return AuditContext(engine=LocalEngine(), dataset=dataset, embedder=HashingEmbedder(),
                        cluster_pipeline=FixedClusterPipeline(), knn_k=10, seed=0)
