"""``finetune()``: the one call behind ``dataaudit finetune`` — load, pick a backend, run, save.

A front end beside :mod:`dataaudit.runner` (it reads the configuration file, which knows the
fine-tune's classes), so it sits above :mod:`dataaudit.config`, outside the ``finetune`` package;
``dataaudit.finetune.finetune`` and ``save_finetune`` still name it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import polars as pl

from dataaudit.dataset import Dataset
from dataaudit.finetune.result import FineTuneResult
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.result import AuditResult

#: Keys of a fine-tune summary that go into the audit report's "Fine-tune confirmation" section.
REPORT_KEYS = ("confirmation", "experiments", "data_map", "forgetting", "rows", "timings", "backend")


def finetune(data: Dataset | str | os.PathLike, audit: AuditResult | str | os.PathLike, *,
             production: Dataset | str | os.PathLike | None = None, backend: str | None = None, model: str | None = None,
             lora: bool | None = None, epochs: int | None = None, max_examples: int | None = None,
             seed: int | None = None, relabel: bool | None = None, refine: bool | None = None,
             progress: Progress = NULL_PROGRESS, config: Any = None) -> FineTuneResult:
    """Run the reference fine-tune that tests ``audit``'s findings on ``data``.

    Paths are loaded as the CLI would (bad lines skipped — the audit saw the same rows);
    ``production`` defaults to the production file the audit itself used, when it had one;
    ``epochs``, ``max_examples`` and the caps on scored and generated rows come from the
    backend's :class:`~dataaudit.finetune.base.Budget` for its device: on a CPU 2,000 rows and
    3 epochs for the encoder, 300 rows, 2 epochs and smaller scoring caps for the causal LM; on
    a GPU more (:meth:`~dataaudit.finetune.base.FineTuneBackend.budget`).

    ``config`` (a configuration file, an audit's ``summary.json``, a dict or an
    :class:`~dataaudit.config.AuditConfig`) supplies its ``[finetune]`` table and the chosen
    backend's ``[finetune.<backend>]`` table; arguments given here win over it, and it wins
    over the budget. ``backend`` defaults to ``auto``, ``seed`` to 0, ``relabel`` and ``refine`` to off.
    """
    from dataaudit.config import BUDGET_KEYS, as_config
    from dataaudit.finetune.engine import ReferenceFineTune, choose_backend
    from dataaudit.io.load import load
    from dataaudit.registry import BACKENDS

    audit_result = audit if isinstance(audit, AuditResult) else AuditResult.load(audit)
    dataset = data if isinstance(data, Dataset) else load(data, skip_bad_lines=True)
    if production is None:
        production = (audit_result.summary.get("production") or {}).get("path")
    production_set = production if isinstance(production, Dataset) or production is None else load(production, skip_bad_lines=True)
    configured = as_config(config)
    table = configured.table("finetune")
    chosen = choose_backend(backend or table.pop("backend", "auto"), dataset, model=model, lora=lora)
    table.pop("backend", None)
    given_backend = {"model": model, "lora": lora}
    chosen.set_params(**{key: value for key, value in configured.table(f"finetune.{BACKENDS.name_of(chosen)}").items()
                         if given_backend.get(key) is None})
    budget = chosen.budget()
    params = {key: getattr(budget, key) for key in BUDGET_KEYS}
    params.update({key: value for key, value in table.items() if value is not None})
    given = {"epochs": epochs, "max_examples": max_examples, "seed": seed, "relabel": relabel, "refine": refine}
    params.update({key: value for key, value in given.items() if value is not None})
    engine = ReferenceFineTune(backend=chosen, **params)
    return engine.run(dataset, audit_result, production=production_set, progress=progress)


def with_verdicts(findings: pl.DataFrame, verdicts: pl.DataFrame) -> pl.DataFrame:
    """``findings`` plus a ``verdict`` column, for the report re-rendered after a fine-tune.

    The verdict is null where the fine-tune has none for the row and check; the saved audit is
    never changed.
    """
    if findings.height == 0 or "row" not in findings.columns:
        return findings
    return findings.join(verdicts.select("row", "check", "verdict"), on=["row", "check"], how="left")


def save_finetune(result: FineTuneResult, audit: AuditResult, out_dir: str | os.PathLike, *,
                  selection: Any = None) -> Path:
    """Write a fine-tune's results beside its audit, and the report with them.

    ``out_dir/finetune/`` gets summary.json, dynamics.parquet, evaluations.parquet and
    row_verdicts.parquet; ``out_dir/report.html`` becomes the audit's report with its fine-tune
    confirmation section, its findings carrying each row's ``verdict``, and the audit's saved
    ``selection`` section when given (:func:`dataaudit.selection.saved.load_selection`).
    """
    from dataaudit.io.audit_store import REPORT_FILE
    from dataaudit.report.html import write_report

    out = Path(out_dir)
    result.save(out / "finetune")
    section = {key: result.summary[key] for key in REPORT_KEYS if key in result.summary}
    with_finetune = dataclasses.replace(audit, findings=with_verdicts(audit.findings, result.row_verdicts),
                                        summary={**audit.summary, "finetune": section})
    return write_report(with_finetune, out / REPORT_FILE, selection=selection)
