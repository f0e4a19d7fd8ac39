"""The commands that act on an audit's verdicts by training: ``finetune`` and ``select``.

``dataaudit finetune`` confirms (or refutes) the findings with a reference fine-tune, or, given
``--selection``, checks that a selection trains better than a random subset; ``dataaudit select``
picks the rows to train on within a budget. Both only parse and render; the work is in
:mod:`dataaudit.finetune_runner` and :mod:`dataaudit.selection`.
"""

from __future__ import annotations

from pathlib import Path

import click

from dataaudit.cli_commands.common import _console, _given, _handle_errors, _progress
from dataaudit.registry import BACKENDS, STRATEGIES
from dataaudit.severity import SEVERITIES


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--audit", "audit_dir", required=True, type=click.Path(path_type=Path),
              help="Directory of the audit of DATA (from `dataaudit audit`).")
@click.option("--production", type=click.Path(path_type=Path), default=None,
              help="Production sample with labels or reference responses (default: the audit's own production file).")
@click.option("--backend", type=click.Choice(["auto", *BACKENDS.names()]), default="auto", show_default=True,
              help="encoder: classifier on a sentence encoder (labelled data); causal-lm: a language model "
                   "(generative data); auto: encoder when DATA has labels.")
@click.option("--model", default=None, help="Base model name or local path (default: bundled MiniLM / SmolLM2-135M-Instruct).")
@click.option("--lora/--full", default=None, help="LoRA adapters or full fine-tuning (default: full for the "
              "encoder, LoRA for the causal LM).")
@click.option("--epochs", type=int, default=None, help="Epochs (default: 3 for the encoder, 2 for the causal LM).")
@click.option("--max-examples", type=int, default=None,
              help="Rows used, sampled per cluster (default: 2000 for the encoder, 300 for the causal LM on a CPU; "
                   "20000 and 1000 on a GPU, with larger scoring caps).")
@click.option("--relabel", is_flag=True, help="Also train on the relabelled export (audit suggestions instead of drops).")
@click.option("--refine", is_flag=True, help="Clear label findings the training dynamics contradict and re-rank the "
              "rest (finetune/row_verdicts.parquet: still_flagged, refined_score).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path),
              help="Output directory (default: the audit directory): finetune/ and report.html.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or table.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="A configuration file or an audit's summary.json: its [finetune] tables (options given here win).")
@click.option("--selection", "selection_path", default=None, type=click.Path(path_type=Path),
              help="A `dataaudit select` output: instead of confirming findings, train on it, on a random subset of "
                   "the same size and on the full cleaned pool, and say whether the selection is better.")
@_handle_errors
def finetune(data, audit_dir, production, backend, model, lora, epochs, max_examples, relabel, refine, seed, out_dir,
             quiet, config_path, selection_path):
    """Fine-tune a reference model on DATA to confirm (or refute) the audit's findings."""
    if selection_path is not None:
        return _verify_selection(data, audit_dir, selection_path, production=production, backend=backend, model=model,
                                 epochs=epochs, seed=seed, out_dir=out_dir, quiet=quiet)
    from dataaudit.finetune_runner import finetune as run_finetune
    from dataaudit.finetune_runner import save_finetune
    from dataaudit.progress import NULL_PROGRESS
    from dataaudit.report.terminal import render_finetune
    from dataaudit.result import AuditResult
    from dataaudit.selection.saved import load_selection

    audit_result = AuditResult.load(audit_dir)
    selection = load_selection(audit_dir)  # the report keeps its Selection section; a broken record fails now
    progress = NULL_PROGRESS if quiet else _progress(_console(stderr=True))
    given = {name: value if _given(name) else None for name, value in
             (("backend", backend), ("seed", seed), ("relabel", relabel), ("refine", refine))}
    result = run_finetune(data, audit_result, production=production, model=model, lora=lora, epochs=epochs,
                          max_examples=max_examples, progress=progress, config=config_path, **given)
    out = Path(out_dir) if out_dir is not None else Path(audit_dir)
    report_path = save_finetune(result, audit_result, out, selection=selection)
    if not quiet:
        render_finetune(_console(), result, report_path=str(report_path))


def _verify_selection(data, audit_dir, selection_path, *, production, backend, model, epochs, seed, out_dir, quiet):
    """Train on the selection, a random subset of its size and the cleaned pool, and save the comparison."""
    from dataaudit.io.load import load
    from dataaudit.progress import NULL_PROGRESS
    from dataaudit.report.selection import render_verification
    from dataaudit.selection.verify import rows_of_subset, verify_selection

    dataset = load(data, skip_bad_lines=True)
    progress = NULL_PROGRESS if quiet else _progress(_console(stderr=True))
    result = verify_selection(dataset, audit_dir, rows_of_subset(dataset, selection_path), production=production,
                              backend=backend, model=model, epochs=epochs, seed=seed, progress=progress)
    out = Path(out_dir if out_dir is not None else audit_dir) / "selection_verification.parquet"
    result.save(out)
    if out_dir is None:  # the audit's report shows the verification beside its selection
        from dataaudit.selection.saved import rewrite_report
        rewrite_report(audit_dir)
    if not quiet:
        render_verification(_console(), result, path=str(out))


@click.command(name="select")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--audit", "audit_dir", required=True, type=click.Path(path_type=Path),
              help="Directory of the audit of DATA: its flagged rows leave the pool, its clusters set the quotas.")
@click.option("--budget", required=True, help="Rows to select: a count (5000) or a share of the cleaned pool (20%).")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Where the selected records go, byte for byte (JSONL).")
@click.option("--strategy", type=click.Choice(STRATEGIES.names()), default=STRATEGIES.names()[0], show_default=True,
              help="diverse: facility location inside each cluster; random: stratified by cluster; longest: most "
                   "response tokens; learnability: highest IFD below 1 (needs the learnability check in the audit).")
@click.option("--production", type=click.Path(path_type=Path), default=None,
              help="Production sample (prompts are enough): cluster quotas follow its traffic.")
@click.option("--production-weight", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="How far the quotas follow production (0: the pool's shares, 1: production's).")
@click.option("--drop", default=None, show_default="every check the audit ran",
              help="Comma-separated checks whose flagged rows leave the pool.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="warning", show_default=True,
              help="Only findings at least this severe remove a row.")
@click.option("--rejected", "rejected_path", default=None, type=click.Path(path_type=Path),
              help="Also write every other input line here, with why it was not selected (JSONL).")
@click.option("--table", "table_path", default=None, type=click.Path(path_type=Path),
              help="Per-row selection table (Parquet; default: selection.parquet beside --out).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No summary table.")
@_handle_errors
def select_rows(data, audit_dir, budget, out_path, strategy, production, production_weight, drop, min_severity,
                rejected_path, table_path, seed, quiet):
    """Choose which rows of DATA to train on within --budget, from the rows the audit does not flag."""
    from dataaudit.report.selection import render_selection
    from dataaudit.selection import TABLE_FILE, select
    from dataaudit.selection.saved import record_selection

    drops = [name.strip() for name in drop.split(",") if name.strip()] if drop else None
    selection = select(data, audit_dir, budget=budget, strategy=strategy, production=production, drop=drops,
                       min_severity=min_severity, production_weight=production_weight, seed=seed)
    counts = selection.write(out_path, table=table_path, rejected=rejected_path)
    record_selection(selection, audit_dir)  # AUDIT/selection.{parquet,json}; the report shows it
    if not quiet:
        render_selection(_console(), selection, out=str(out_path),
                         table_path=str(table_path or Path(out_path).parent / TABLE_FILE), counts=counts)
