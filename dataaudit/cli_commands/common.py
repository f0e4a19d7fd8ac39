"""What every ``dataaudit`` command shares: error handling, input-format options, consoles, progress.

Kept below :mod:`dataaudit.cli` so the command modules beside this one can use it without
importing the click group that registers them.
"""

from __future__ import annotations

import functools
import sys

import click

from dataaudit.errors import DataAuditError


def _console(stderr: bool = False):
    """Make a rich console for rendering: no syntax highlighting or wrapping of data-derived text."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _handle_errors(command):
    """Turn library errors into one clear line on stderr and the error's exit code — never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DataAuditError as error:
            from dataaudit.report.terminal import printable

            click.echo(f"error: {printable(error)}", err=True)
            sys.exit(error.exit_code)

    return wrapper


def _format_options(command):
    """Add the input-format options (``--format``, ``--prompt-field`` and friends) to a command."""
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


def _load_options(format_name, prompt_field, response_field, label_field, system_field, skip_bad_lines):
    """Bundle a command's format options into one :class:`~dataaudit.io.options.LoadOptions` value."""
    from dataaudit.io.options import LoadOptions

    return LoadOptions(format=format_name, prompt_field=prompt_field, response_field=response_field,
                       label_field=label_field, system_field=system_field, skip_bad_lines=skip_bad_lines)


def _load(path, options):
    """Load ``path`` with ``options`` (the library's loader, imported only when a command runs)."""
    from dataaudit.io.load import load_with

    return load_with(path, options)


def _given(name: str) -> bool:
    """Tell whether the option ``name`` was given on the command line (not left at its default)."""
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(name) is ParameterSource.COMMANDLINE


def _progress(console):
    """Show progress as bars on a terminal; in a log (CI, a pipe) one plain line per stage every few seconds."""
    if console.is_terminal:
        from dataaudit.report.terminal import RichProgress

        return RichProgress(console=console)
    from dataaudit.progress import LogProgress

    return LogProgress(stream=sys.stderr)
