"""Stage timing shared by the audit context and the reference fine-tune."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Iterator

logger = logging.getLogger(__name__)


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[name]`` (ms resolution), also when it raises.

    Repeated stages of one name add up, so a stage run per view or per experiment reports its total.
    """
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        timings[name] = round(timings.get(name, 0.0) + elapsed, 3)
        logger.info("%s took %.2fs", name, elapsed)
