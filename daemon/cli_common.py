"""What every riffd command shares: the bad-input error (exit 2), loading a preset or a
model by name with errors turned into one clear line, and the seed and output-folder
option types that refuse a bad value as it is parsed."""
from __future__ import annotations

import os
from pathlib import Path

import click

from riffd.bridges.midi import APIS
from riffd.presets import PresetError, is_meter, load_preset

# --model's help, for every command that takes one (serve, render, watch)
MODEL_HELP = ("rules, markov, mlx, onnx, onnx-int8, riff-fiddle, riff-folksong, riff-chorale, riff-air, "
              "riff-strathspey or a model path [preset's].")


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
    from riffd.models import is_shipped_neural, load_model, load_or_fallback
    try:
        if is_shipped_neural(name):
            return load_or_fallback(name, warn=lambda msg: click.echo(msg, err=True))
        return load_model(name)
    except (ValueError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from None


def model_or_rules(name, warn):
    """For the live daemon: the model by name, or the rules model when a model file is
    missing or corrupt (``warn`` gets one line saying so). An unknown name that is not a
    path is still bad input (BadInput)."""
    from pathlib import Path

    from riffd.models import BUILTIN, is_shipped_neural, load_model

    from .logs import reason
    try:
        return load_model(name)
    except Exception as exc:
        if name in BUILTIN or (not is_shipped_neural(name) and not Path(name).suffix and "/" not in name):
            raise BadInput(str(exc)) from None
        warn(f"model {name!r} cannot be used ({reason(exc)}); the rules model plays instead")
        return load_model("rules")


def parse_channels(text: str) -> set[int] | None:
    """``--in-channel``: "all", or channels 1-16 as "1", "1,2" or "1-4". None for the
    default (all but 10). Raises BadInput."""
    if text in ("", "default"):
        return None
    if text == "all":
        return set(range(1, 17))
    channels: set[int] = set()
    try:
        for part in text.split(","):
            low, dash, high = part.partition("-")
            first, last = int(low), int(high if dash else low)  # "1-" is no range: refused
            if first > last:
                raise BadInput(f"--in-channel {text!r}: {part} runs backwards (write {last}-{first})")
            channels.update(range(first, last + 1))
    except ValueError:
        raise BadInput(f"--in-channel {text!r}: give 'all', or channels 1-16 such as 1,2 or 1-4") from None
    if not channels or min(channels) < 1 or max(channels) > 16:
        raise BadInput(f"--in-channel {text!r}: channels are 1-16")
    return channels


def check_models(names):
    """Load each model once so that a bad name or a missing checkpoint fails before any
    work; raises BadInput."""
    from riffd.models import load_model
    for name in names:
        try:
            load_model(name)
        except (ValueError, OSError) as exc:
            raise BadInput(str(exc)) from None


class OutputFolder(click.Path):
    """click's folder path for a folder a command makes and writes in: refused as it is
    parsed (exit 2) where it cannot be made or written in, before any work is done."""

    def __init__(self):
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        there = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
        if not there.is_dir():
            self.fail(f"{there} is a file, where the path needs a folder", param, ctx)
        if not os.access(there, os.W_OK | os.X_OK):
            self.fail(f"no permission to make or write a folder in {there}", param, ctx)
        return path


OUTPUT_FOLDER = OutputFolder()


def require_dataset(folder, marker: str = "train.npy"):
    """Raise BadInput unless ``folder`` holds a dataset from 'riffd dataset build'."""
    if folder is None or not (folder / marker).exists():
        raise BadInput(f"{folder}: not a dataset folder (build one with 'riffd dataset build')")


api_option = click.option("--midi-api", type=click.Choice(list(APIS)), default="auto", show_default=True,
                          help="MIDI backend of python-rtmidi.")


class Meter(click.ParamType):
    """A time signature as written, ``3/4`` or ``6/8``: [numerator, denominator]
    (presets.is_meter: the denominator 1, 2, 4, 8 or 16)."""
    name = "N/D"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        numerator, _, denominator = str(value).partition("/")
        if not (numerator.strip().isdigit() and denominator.strip().isdigit()
                and is_meter(int(numerator), int(denominator))):
            self.fail(f"{value!r} is not a time signature such as 3/4 or 6/8", param, ctx)
        return [int(numerator), int(denominator)]


METER = Meter()
# a seed seeds numpy (SeedSequence) and MLX (mx.random.seed, a uint64): whole numbers from 0
SEED = click.IntRange(0, 2**63 - 1)
POSITIVE = click.FloatRange(0, min_open=True)  # a rate or a time: above 0
SEMITONES = click.IntRange(0, 127)  # a melody's range: at most the MIDI pitches'
json_option = click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
repeats_option = click.option("--repeats", type=click.Choice(["written", "played"]), default="written",
                              show_default=True, help="Corpus scores' bars as written (each section once) or as "
                                                      "played (repeat signs and first/second endings taken).")


def warm_option(help_text: str):
    """``--warm-ms``: serve's milliseconds between warm-up model calls (0: none)."""
    return click.option("--warm-ms", type=click.FloatRange(0, 1000), default=10.0, show_default=True, help=help_text)
