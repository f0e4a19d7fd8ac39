"""``finetune()``: the one call behind ``dataaudit finetune`` — load, pick a backend, run, save."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import polars as pl

from dataaudit.dataset import Dataset
from dataaudit.finetune.result import FineTuneResult
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.result import REPORT_FILE, AuditResult

#: Keys of a fine-tune summary that go into the audit report's "Fine-tune confirmation" section.
REPORT_KEYS = ("confirmation", "experiments", "data_map", "forgetting", "rows", "timings", "backend")


def finetune(data: Dataset | str | os.PathLike, audit: AuditResult | str | os.PathLike, *,
             production: Dataset | str | os.PathLike | None = None, backend: str = "auto", model: str | None = None,
             lora: bool | None = None, epochs: int | None = None, max_examples: int | None = None, seed: int = 0,
             relabel: bool = False, refine: bool = False, progress: Progress = NULL_PROGRESS) -> FineTuneResult:
    """Run the reference fine-tune that tests ``audit``'s findings on ``data``.

    Paths are loaded as the CLI would (bad lines skipped — the audit saw the same rows);
    ``production`` defaults to the production file the audit itself used, when it had one;
    ``epochs``, ``max_examples`` and the caps on scored and generated rows come from the
    backend's :class:`~dataaudit.finetune.base.Budget` for its device: on a CPU 2,000 rows and
    3 epochs for the encoder, 300 rows, 2 epochs and smaller scoring caps for the causal LM; on
    a GPU more (:meth:`~dataaudit.finetune.base.FineTuneBackend.budget`).
    """
    from dataaudit.finetune.engine import ReferenceFineTune, choose_backend
    from dataaudit.io.load import load

    audit_result = audit if isinstance(audit, AuditResult) else AuditResult.load(audit)
    dataset = data if isinstance(data, Dataset) else load(data, skip_bad_lines=True)
    if production is None:
        production = (audit_result.summary.get("production") or {}).get("path")
    production_set = production if isinstance(production, Dataset) or production is None else load(production, skip_bad_lines=True)
    chosen = choose_backend(backend, dataset, model=model, lora=lora)
    budget = chosen.budget()
    engine = ReferenceFineTune(backend=chosen, epochs=budget.epochs if epochs is None else epochs,
                               max_examples=budget.max_examples if max_examples is None else max_examples,
                               max_production=budget.max_production, max_perturbed=budget.max_perturbed,
                               max_few_shot=budget.max_few_shot, few_shot_k=budget.few_shot_k,
                               max_generations=budget.max_generations, seed=seed, relabel=relabel,
                               refine=refine)
    return engine.run(dataset, audit_result, production=production_set, progress=progress)


def with_verdicts(findings: pl.DataFrame, verdicts: pl.DataFrame) -> pl.DataFrame:
    """``findings`` plus a ``verdict`` column, for the report re-rendered after a fine-tune.

    The verdict is null where the fine-tune has none for the row and check; the saved audit is
    never changed.
    """
    if findings.height == 0 or "row" not in findings.columns:
        return findings
    return findings.join(verdicts.select("row", "check", "verdict"), on=["row", "check"], how="left")


def save_finetune(result: FineTuneResult, audit: AuditResult, out_dir: str | os.PathLike) -> Path:
    """Write a fine-tune's results beside its audit, and the report with them.

    ``out_dir/finetune/`` gets summary.json, dynamics.parquet, evaluations.parquet and
    row_verdicts.parquet; ``out_dir/report.html`` becomes the audit's report with its fine-tune
    confirmation section, its findings carrying each row's ``verdict``.
    """
    from dataaudit.report.html import write_report

    out = Path(out_dir)
    result.save(out / "finetune")
    section = {key: result.summary[key] for key in REPORT_KEYS if key in result.summary}
    with_finetune = dataclasses.replace(audit, findings=with_verdicts(audit.findings, result.row_verdicts),
                                        summary={**audit.summary, "finetune": section})
    return write_report(with_finetune, out / REPORT_FILE)
