"""FineTuneResult: what a reference fine-tune measured, saved as JSON + Parquet (never pickle)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from dataaudit.finetune.verdicts import ROW_VERDICTS_SCHEMA
from dataaudit.io.atomic import atomic_path, write_text_atomic

SUMMARY_FILE = "summary.json"
DYNAMICS_FILE = "dynamics.parquet"
EVALUATIONS_FILE = "evaluations.parquet"
ROW_VERDICTS_FILE = "row_verdicts.parquet"


@dataclass
class FineTuneResult:
    """``summary`` is JSON-safe (config, experiments, ``confirmation`` table); ``dynamics`` is the
    raw run's data map per training row; ``evaluations`` holds every scored example as
    ``experiment, split, row, loss, correct, output``; ``row_verdicts`` one row per flagged
    training row and check (see :mod:`dataaudit.finetune.verdicts`)."""

    summary: dict[str, Any]
    dynamics: pl.DataFrame
    evaluations: pl.DataFrame
    row_verdicts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ROW_VERDICTS_SCHEMA))

    @property
    def confirmation(self) -> pl.DataFrame:
        records = self.summary.get("confirmation", [])
        columns = ["finding", "prediction", "measurement", "verdict", "effect", "ci_low", "ci_high"]
        frame = pl.DataFrame([{k: r.get(k) for k in columns} for r in records],
                             schema={c: pl.Float64 if c in ("effect", "ci_low", "ci_high") else pl.String for c in columns})
        return frame

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``<directory>/summary.json``, ``dynamics.parquet``, ``evaluations.parquet`` and
        ``row_verdicts.parquet``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / SUMMARY_FILE, json.dumps(self.summary, indent=2, ensure_ascii=False, default=str) + "\n")
        for frame, name in ((self.dynamics, DYNAMICS_FILE), (self.evaluations, EVALUATIONS_FILE),
                            (self.row_verdicts, ROW_VERDICTS_FILE)):
            with atomic_path(out / name) as temp:
                frame.write_parquet(temp)
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "FineTuneResult":
        from dataaudit.errors import InputError

        source = Path(directory)
        if not (source / SUMMARY_FILE).exists():
            raise InputError(f"not a fine-tune directory (no {SUMMARY_FILE})", path=str(source))
        return cls(
            summary=json.loads((source / SUMMARY_FILE).read_text(encoding="utf-8")),
            dynamics=pl.read_parquet(source / DYNAMICS_FILE),
            evaluations=pl.read_parquet(source / EVALUATIONS_FILE),
            row_verdicts=(pl.read_parquet(source / ROW_VERDICTS_FILE) if (source / ROW_VERDICTS_FILE).exists()
                          else pl.DataFrame(schema=ROW_VERDICTS_SCHEMA)),  # written before per-row verdicts
        )
