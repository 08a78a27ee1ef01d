"""What every riffd command shares: the bad-input error (exit 2), and loading a preset or
a model by name with errors turned into one clear line."""
from __future__ import annotations

import click

from riffd.bridges.midi import APIS
from riffd.presets import PresetError, load_preset


class BadInput(click.ClickException):
    """Bad usage or input: exit 2 with a one-line reason on stderr."""
    exit_code = 2

    def show(self, file=None):
        click.echo(f"riffd: error: {self.format_message()}", err=True)


def preset_or_exit(name, **overrides):
    """The preset ``name`` (bundled name or TOML path) with ``overrides`` that are not
    None; raises BadInput naming the file and key of a bad preset."""
    try:
        preset = load_preset(name)
        values = {k: v for k, v in overrides.items() if v is not None}
        return preset.with_values(**values) if values else preset
    except PresetError as exc:
        raise BadInput(str(exc)) from None


def model_or_exit(name):
    """The model by name; a shipped neural model that cannot load falls back to rules
    with a warning (the daemon keeps playing); a bad path is bad input."""
    from riffd.models import NEURAL, load_model, load_or_fallback
    try:
        if name in NEURAL:
            return load_or_fallback(name, warn=lambda msg: click.echo(msg, err=True))
        return load_model(name)
    except (ValueError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from None


def check_models(names):
    """Load each model once so that a bad name or a missing checkpoint fails before any
    work; raises BadInput."""
    from riffd.models import load_model
    for name in names:
        try:
            load_model(name)
        except (ValueError, OSError) as exc:
            raise BadInput(str(exc)) from None


def require_dataset(folder, marker: str = "train.npy"):
    """Raise BadInput unless ``folder`` holds a dataset from 'riffd dataset build'."""
    if folder is None or not (folder / marker).exists():
        raise BadInput(f"{folder}: not a dataset folder (build one with 'riffd dataset build')")


api_option = click.option("--midi-api", type=click.Choice(list(APIS)), default="auto", show_default=True,
                          help="MIDI backend of python-rtmidi.")
json_option = click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
