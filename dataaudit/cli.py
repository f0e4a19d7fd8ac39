"""The ``dataaudit`` command line: parse arguments, call the API, render the result.

This module holds the click group and the commands about one dataset and its audit; the
training commands (``finetune``, ``select``) and the helpers all commands share live in
:mod:`dataaudit.cli_commands`.

Exit codes: 0 success; 1 findings at or above ``--fail-on``; 2 usage or input error;
3 not enough memory (the audit was refused before it started; see ``DATAAUDIT_MEMORY_LIMIT``);
4 with ``--fail-on``, a check failed while running (the gate could not look, so it does not pass).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dataaudit._version import __version__
from dataaudit.cli_commands.common import (
    _console,
    _format_options,
    _given,
    _handle_errors,
    _load,
    _load_options,
    _progress,
)
from dataaudit.cli_commands.training import finetune, select_rows
from dataaudit.io.convert import TARGET_FORMATS
from dataaudit.registry import ENGINES
from dataaudit.severity import SEVERITIES

#: ``audit --fail-on``'s exit code when a check raised: its findings are missing, not zero.
EXIT_CHECK_FAILED = 4


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dataaudit")
def main() -> None:
    """Audit instruction fine-tuning datasets before you train on them."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@_format_options
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@_handle_errors
def inspect(files, format_name, prompt_field, response_field, label_field, system_field, as_json):
    """Show format, counts, lengths and labels of each FILE (bad lines are counted, not fatal)."""
    from dataaudit.profile import profile_dataset
    from dataaudit.report.terminal import render_profile

    profiles = [
        profile_dataset(_load(path, _load_options(format_name, prompt_field, response_field, label_field,
                                                   system_field, True)))
        for path in files
    ]
    if as_json:
        click.echo(json.dumps([profile.to_dict() for profile in profiles], indent=2, ensure_ascii=False))
        return
    console = _console()
    for profile in profiles:
        render_profile(console, profile)


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "clean_path", default=None, type=click.Path(path_type=Path), help="Where kept records go (one JSONL).")
@click.option("--out-dir", "clean_dir", default=None, type=click.Path(path_type=Path),
              help="Instead of --out: a folder of cleaned files mirroring DATA's files, each in its own container "
                   "(Parquet in, Parquet out).")
@click.option("--rejected", "rejected_path", required=True, type=click.Path(path_type=Path),
              help="Where dropped and unparseable lines go, each with its reasons (JSONL).")
@click.option("--audit", "audit_dir", type=click.Path(path_type=Path), default=None,
              help="An audit directory of DATA: drop the rows it flagged (see --drop, --min-severity).")
@click.option("--drop", default=None, show_default="every check the audit ran",
              help="Comma-separated checks whose flagged rows are dropped.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="warning", show_default=True,
              help="Drop only findings at least this severe.")
@click.option("--annotate", is_flag=True, help="Keep every record and add its findings under the key '_dataaudit'.")
@click.option("--to", "to_format", type=click.Choice(TARGET_FORMATS), default=None,
              help="Convert kept records to another format (no longer byte-for-byte).")
@click.option("--relabel", is_flag=True, help="Apply the audit's label suggestions and log the changes; with the "
              "default --drop, rows flagged only for their label are relabelled and kept (--drop conflict drops them).")
@click.option("--changes", "changes_path", type=click.Path(path_type=Path), default=None,
              help="Where --relabel logs its changes (default: OUT.changes.jsonl).")
@click.option("--confirmed-only", is_flag=True,
              help="Drop only rows the reference fine-tune confirmed (reads AUDIT/finetune/row_verdicts.parquet).")
@_format_options
@_handle_errors
def export(data, clean_path, clean_dir, rejected_path, audit_dir, drop, min_severity, annotate, to_format, relabel,
           changes_path, confirmed_only, format_name, prompt_field, response_field, label_field, system_field):
    """Write DATA's kept records byte-for-byte to --out (or --out-dir) and every other line, with reasons, to --rejected."""
    from dataaudit.errors import UsageError
    from dataaudit.io.shards import write_partition_dir
    from dataaudit.io.writers import write_partition

    if (clean_path is None) == (clean_dir is None):
        raise UsageError("give one of --out FILE (one JSONL) or --out-dir DIR (files mirroring DATA)")
    dataset = _load(data, _load_options(format_name, prompt_field, response_field, label_field, system_field, True))
    target = clean_path if clean_path is not None else clean_dir
    if audit_dir is None:
        if annotate or to_format or relabel or confirmed_only:
            raise UsageError("--annotate, --to, --relabel and --confirmed-only need --audit DIR")
        if clean_dir is not None:
            counts = write_partition_dir(dataset, out_dir=clean_dir, rejected=rejected_path)
        else:
            counts = write_partition(dataset, clean=clean_path, rejected=rejected_path)
        click.echo(
            f"kept {counts.kept:,} records → {target}; rejected {counts.rejected:,} lines → {rejected_path} "
            f"({counts.dropped:,} dropped, {counts.bad:,} unparseable, {counts.blank:,} blank)"
        )
        return
    from dataaudit.export import export_clean
    from dataaudit.result import AuditResult

    result = AuditResult.load(audit_dir)
    checks = None if drop is None else [name.strip() for name in drop.split(",") if name.strip()]
    verdicts = _row_verdicts(audit_dir) if confirmed_only else None
    summary = export_clean(dataset, result, clean=clean_path, rejected=rejected_path, drop=checks,
                           min_severity=min_severity, annotate=annotate, to=to_format, relabel=relabel,
                           changes=changes_path, confirmed_only=verdicts, out_dir=clean_dir)
    by_check = ", ".join(f"{name} {count:,}" for name, count in summary.dropped_by_check.items()) or "none"
    click.echo(
        f"kept {summary.kept:,} records → {target}; rejected {summary.dropped + summary.bad + summary.blank:,} lines → "
        f"{rejected_path} ({summary.dropped:,} dropped — {by_check}; {summary.bad:,} unparseable, {summary.blank:,} blank)"
        + (f"; relabeled {summary.relabeled:,} ({summary.relabeled_kept:,} kept instead of dropped for their label)"
           + (f", changes → {summary.changes}" if summary.relabeled else "") if relabel else "")
    )


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", default="dataaudit-out", show_default=True, type=click.Path(path_type=Path),
              help="Directory for rows.parquet, findings.jsonl, clusters.parquet, summary.json.")
@click.option("--production", type=click.Path(path_type=Path), default=None,
              help="A sample of production traffic (prompts are enough): turns on the coverage-gap analysis.")
@click.option("--coverage-alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Share of in-distribution production rows flagged as coverage gaps, calibrated (default: 0.05).")
@click.option("--eval", "eval_paths", type=click.Path(path_type=Path), multiple=True,
              help="A benchmark test set (any supported format; repeatable): the contamination check looks for "
                   "its items.")
@click.option("--checks", "check_names", default=None,
              help="Comma-separated checks to run (default: all). See `dataaudit checks`.")
@click.option("--model", default=None, help="sentence-transformers model name or local path (default: bundled all-MiniLM-L6-v2).")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True,
              help="Embedding precision: auto = bfloat16 on GPUs and on CPUs with AMX or AVX512-BF16, float32 elsewhere.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Cache directory: embeddings, kNN graphs and clusterings.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the cache (embeddings, kNN graphs, clusterings).")
@click.option("--min-cluster-size", type=int, default=None, help="HDBSCAN min_cluster_size (default: derived from n).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit with code 1 when findings of this severity or worse exist (gate a training pipeline), "
                   "and with code 4 when a check failed.")
@click.option("--skip-bad-lines", is_flag=True, help="Continue past malformed lines (they are counted and reported).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary; just the exit code.")
@click.option("--verbose", "-v", is_flag=True, help="Also show how long each stage took.")
@click.option("--baseline", "baseline_dir", type=click.Path(path_type=Path), default=None,
              help="An earlier audit directory: --fail-on counts only findings not in it (rows matched by content); "
                   "the summary says how many are new, unchanged and resolved.")
@click.option("--engine", "engine_name", type=click.Choice(ENGINES.names()), default="local", show_default=True,
              help="Where reading, embedding and the kNN graphs run: this process, or Ray (pip install 'dataaudit[ray]').")
@click.option("--ray-address", default=None,
              help="An existing Ray cluster ('auto', 'ray://head:10001'); implies --engine ray. Default: a local one.")
@click.option("--max-seq-length", type=click.IntRange(min=1), default=None,
              help="Token budget of the length check: rows whose response it cuts are flagged (default: 2048).")
@click.option("--tokenizer", default=None,
              help="Tokenizer of the length and template checks: a Hugging Face tokenizer folder or .gguf file "
                   "(default: SmolLM2's).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="A configuration file (TOML, see `dataaudit config`) or an earlier audit's summary.json (to rerun "
                   "it exactly); options given on the command line win over it.")
@_format_options
@_handle_errors
def audit(data, out_dir, production, coverage_alpha, eval_paths, check_names, model, precision, cache_dir, no_cache, min_cluster_size,
          seed, fail_on, skip_bad_lines, quiet, verbose, baseline_dir, engine_name, ray_address, max_seq_length, tokenizer,
          config_path, format_name, prompt_field, response_field, label_field, system_field):
    """Audit DATA: embed, cluster, run the checks (and coverage with --production); write results to --out.

    DATA is a file, a folder of files (shards), a quoted glob ('shards/*.jsonl.gz'), a datasets
    save_to_disk folder, or hf:ORG/NAME[:SPLIT] from the local Hugging Face cache.
    """
    from dataaudit.artefacts import NULL_ARTEFACTS, ArtefactCache
    from dataaudit.embed import default_cache_dir
    from dataaudit.engine import RayEngine, make_engine
    from dataaudit.io.audit_store import check_output_dir
    from dataaudit.io.options import LoadOptions
    from dataaudit.io.staging import remove_stale_staging
    from dataaudit.progress import NULL_PROGRESS
    from dataaudit.report.html import save_with_report
    from dataaudit.report.terminal import printable, render_audit
    from dataaudit.runner import audit as run_audit
    from dataaudit.runner import default_embedder
    from dataaudit.severity import at_least

    check_output_dir(out_dir, inputs=[data, production, *eval_paths])  # before the costly part, not after
    remove_stale_staging(out_dir)  # a killed earlier run's staging folder frees its disk space now
    given = {name: value for name, value in click.get_current_context().params.items() if _given(name)}
    config = _audit_config(config_path, given)  # a bad file or value fails now, before any work
    console = _console(stderr=True)
    engine = make_engine(RayEngine(address=ray_address) if ray_address is not None else engine_name)
    options = _load_options(format_name, prompt_field, response_field, label_field, system_field, skip_bad_lines)
    dataset = engine.load(data, options)
    production_set = engine.load(production, LoadOptions(skip_bad_lines=skip_bad_lines)) if production is not None else None
    progress = NULL_PROGRESS if quiet else _progress(console)
    result = run_audit(
        dataset,
        production=production_set,
        eval_sets=list(eval_paths),  # the runner loads them like the production file
        config=config,
        embedder=default_embedder(embedder=config.embedder(), cache_dir=cache_dir, use_cache=not no_cache),
        progress=progress,
        engine=engine,
        artefacts=NULL_ARTEFACTS if no_cache else ArtefactCache(directory=Path(cache_dir or default_cache_dir()) / "artefacts"),
        baseline=baseline_dir,
    )
    gated = result.gate_findings()
    save_with_report(result, out_dir)
    if not quiet:
        stdout = _console()
        render_audit(stdout, result, out_dir=str(out_dir))
        if "baseline" in result.summary:
            counts = result.summary["baseline"]
            stdout.print(f"against the baseline: {counts['new']:,} new findings, {counts['unchanged']:,} unchanged, "
                         f"{counts['resolved']:,} resolved")
        if verbose:
            _render_timings(stdout, result.summary.get("timings", {}))
    if fail_on is not None and result.failed_checks:  # before the findings: missing ones cannot pass
        failed = "; ".join(f"{name}: {error}" for name, error in result.failed_checks.items())
        click.echo(f"error: --fail-on: {len(result.failed_checks)} check(s) failed, so the gate could not look "
                   f"({printable(failed)})", err=True)
        sys.exit(EXIT_CHECK_FAILED)
    if fail_on is not None and gated.height and gated.filter(at_least(fail_on)).height:
        sys.exit(1)


#: ``--option`` → the (config table, key) pairs it sets: the options that are configuration, not inputs or outputs.
CONFIG_OPTIONS = {"seed": (("audit", "seed"),), "model": (("embed", "model"),), "precision": (("embed", "precision"),),
                  "min_cluster_size": (("cluster", "min_cluster_size"),), "coverage_alpha": (("coverage", "alpha"),),
                  "max_seq_length": (("checks.length", "max_seq_length"),),
                  "tokenizer": (("checks.length", "tokenizer"), ("checks.template", "tokenizer"))}


def _audit_config(config_path, given):
    """Read the file's configuration (or the defaults) and put the options given on the command line on top."""
    from dataaudit.config import AuditConfig, read_config
    from dataaudit.errors import UsageError

    config = read_config(config_path) if config_path is not None else AuditConfig()
    if "check_names" in given:
        names = [name.strip() for name in given["check_names"].split(",") if name.strip()]
        config = config.override("audit", "--checks", checks=names)
    for option, targets in CONFIG_OPTIONS.items():
        if option not in given:
            continue
        flag = "--" + option.replace("_", "-")
        checks = [table.removeprefix("checks.") for table, _ in targets if table.startswith("checks.")]
        running = [name for name in checks if name in config.check_names()]
        if checks and not running:
            raise UsageError(f"{flag} configures the {' and '.join(checks)} check{'s' if len(checks) > 1 else ''}, "
                             "which --checks leaves out")
        for table, key in targets:
            if not table.startswith("checks.") or table.removeprefix("checks.") in running:
                config = config.override(table, flag, **{key: given[option]})
    return config


def _render_timings(console, timings) -> None:
    """Print how long each stage took (``--verbose``), to see where an audit spends its time."""
    from rich.table import Table

    table = Table(title="Stage timings", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in timings.items():
        table.add_row(str(stage), f"{seconds:,.2f}")
    console.print(table)


def _row_verdicts(audit_dir: Path):
    """Read the fine-tune's per-row verdicts saved beside the audit (``dataaudit finetune`` wrote them)."""
    import polars as pl

    from dataaudit.errors import UsageError
    from dataaudit.finetune.result import ROW_VERDICTS_FILE

    path = Path(audit_dir) / "finetune" / ROW_VERDICTS_FILE
    if not path.exists():
        raise UsageError(f"--confirmed-only needs {path}: run `dataaudit finetune DATA --audit {audit_dir}` first")
    return pl.read_parquet(path)


@main.command()
@click.argument("audit_dir", type=click.Path(path_type=Path))
@_handle_errors
def report(audit_dir):
    """Re-render AUDIT_DIR/report.html from a saved audit, its fine-tune and selection (no recomputation)."""
    from dataaudit.selection.saved import rewrite_report

    path = rewrite_report(audit_dir)
    click.echo(f"wrote {path}")


@main.command(name="config")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Start from this file (TOML, or an earlier audit's summary.json) instead of the defaults.")
@_handle_errors
def show_config(config_path):
    """Print the effective configuration, defaults included, as a TOML file to edit and pass to --config."""
    from dataaudit.config import AuditConfig, read_config, to_toml

    config = read_config(config_path) if config_path is not None else AuditConfig()
    click.echo(to_toml(config.effective()), nl=False)


@main.command(name="checks")
def list_checks():
    """List the available checks (installed plug-ins included), what each flags, and its finding kinds."""
    from dataaudit.checks import PLUGIN_ERRORS, available_checks

    for name, check in available_checks().items():
        about = check.description or ((check.__doc__ or "").strip().splitlines() or [""])[0]
        click.echo(f"{name:10s} {about}")
        if check.kinds:
            click.echo(f"{'':10s} kinds: {', '.join(check.kinds)}")
    for name, error in PLUGIN_ERRORS.items():
        click.echo(f"{name:10s} (plug-in not loaded: {error})", err=True)


main.add_command(finetune)
main.add_command(select_rows)

if __name__ == "__main__":
    main()
