"""The ``dataaudit`` command line: parse arguments, call the API, render the result.

Exit codes: 0 success; 1 findings at or above ``--fail-on``; 2 usage or input error.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from dataaudit._version import __version__
from dataaudit.errors import DataAuditError


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _handle_errors(command):
    """Turn library errors into one clear line on stderr and exit code 2 — never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DataAuditError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper


def _format_options(command):
    from dataaudit.io.formats import format_names

    options = [
        click.option("--format", "format_name", default="auto", show_default=True,
                     type=click.Choice(["auto", *format_names()]), help="Input format; detected per file by default."),
        click.option("--prompt-field", default=None, help="Field holding the prompt (implies --format fields)."),
        click.option("--response-field", default=None, help="Field holding the response."),
        click.option("--label-field", default=None, help="Field holding a class label."),
        click.option("--system-field", default=None, help="Field holding a system prompt."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load(path, format_name, prompt_field, response_field, label_field, system_field, skip_bad_lines):
    from dataaudit.io.load import load

    return load(
        path,
        format=format_name,
        prompt_field=prompt_field,
        response_field=response_field,
        label_field=label_field,
        system_field=system_field,
        skip_bad_lines=skip_bad_lines,
    )


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
        profile_dataset(_load(path, format_name, prompt_field, response_field, label_field, system_field, True))
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
@click.option("--out", "clean_path", required=True, type=click.Path(path_type=Path), help="Where kept records go (JSONL).")
@click.option("--rejected", "rejected_path", required=True, type=click.Path(path_type=Path),
              help="Where dropped and unparseable lines go, each with its reasons (JSONL).")
@_format_options
@_handle_errors
def export(data, clean_path, rejected_path, format_name, prompt_field, response_field, label_field, system_field):
    """Write DATA's kept records byte-for-byte to --out and every other line to --rejected."""
    from dataaudit.io.writers import write_partition

    dataset = _load(data, format_name, prompt_field, response_field, label_field, system_field, True)
    counts = write_partition(dataset, clean=clean_path, rejected=rejected_path)
    click.echo(
        f"kept {counts.kept:,} records → {clean_path}; rejected {counts.rejected:,} lines → {rejected_path} "
        f"({counts.dropped:,} dropped, {counts.bad:,} unparseable, {counts.blank:,} blank)"
    )
