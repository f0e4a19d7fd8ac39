"""Progress as log lines: rate, ETA, a line every few seconds, never a blank line."""

from __future__ import annotations

import io

from dataaudit.progress import LogProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_with_rate_and_eta():
    stream, clock = io.StringIO(), Clock()
    progress = LogProgress(stream=stream, interval=5.0, clock=clock)
    with progress.task("Embedding", total=1000) as task:
        for _ in range(10):
            clock.now += 1.0
            task.advance(50)
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and all(lines[:-1])
    assert lines[:-1] == [
        "Embedding: 250/1,000 (25%), 50/s, 5s elapsed, eta 15s",
        "Embedding: 500/1,000 (50%), 50/s, 10s elapsed, eta 10s",
        "Embedding: done, 500/1,000 in 10s (50/s)",
    ]


def test_a_task_without_a_count_says_only_when_it_is_done():
    stream, clock = io.StringIO(), Clock()
    with LogProgress(stream=stream, clock=clock).task("Clustering") as _:
        clock.now = 125
    assert stream.getvalue() == "Clustering: done in 2m05s\n"
