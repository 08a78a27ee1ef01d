"""The riffd command line (click): it parses and calls, nothing more. Commands live by
group in cli_live (serve, ports, render, demo, osc-help), cli_folder (watch), cli_models
(dataset, train, finetune, export, calibrate), cli_eval (eval), cli_blend (blend) and cli_bench
(bench). Exit codes: 0 done, 1 runtime failure, 2 bad usage or bad input, with a
one-line reason on stderr."""
from __future__ import annotations

import sys

import click

from . import cli_bench, cli_blend, cli_eval, cli_folder, cli_live, cli_models


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="riffd")
def cli():
    """riffd: play chords, get melodies back, live over MIDI or in batch."""


for command in (*cli_live.COMMANDS, *cli_folder.COMMANDS, *cli_models.COMMANDS, *cli_eval.COMMANDS, *cli_blend.COMMANDS,
                *cli_bench.COMMANDS):
    cli.add_command(command)


def main():
    """The ``riffd`` entry point: runs ``cli`` and turns every failure into an exit code
    and one line on stderr (never a traceback)."""
    try:
        cli.main(prog_name="riffd", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("riffd: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(0)
    except Exception as exc:  # a runtime failure: one line, exit 1
        click.echo(f"riffd: failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
