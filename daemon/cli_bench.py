"""``riffd bench``: the benchmarks; each takes --json and ends with one JSON object."""
from __future__ import annotations

import click

from .cli_common import check_models, json_option, preset_or_exit


@click.group()
def bench():
    """Benchmarks; each takes --json and ends with one JSON object on its last line."""


@bench.command("latency")
@click.option("--chords", type=click.IntRange(10, 5000), default=215, show_default=True,
              help="Chords to strike (corpus chorales, 64 beats of each at most).")
@click.option("--tempo", type=float, default=100.0, show_default=True)
@click.option("--models", default="rules,markov", show_default=True)
@click.option("--period", type=int, default=128, show_default=True, help="JACK period (frames at 48 kHz).")
@click.option("--preset", default="pop", show_default=True)
@json_option
def bench_latency(chords, tempo, models, period, preset, as_json):
    """Reaction time and timing error of riffd serve over JACK, following MIDI clock."""
    from .bench import latency
    preset_or_exit(preset)
    latency(min_chords=chords, tempo=tempo, models=models.split(","), period=period, preset=preset,
            as_json=as_json, echo=click.echo)


@bench.command("tokenize")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True, help="Timed passes (best kept).")
@json_option
def bench_tokenize(files, repeat, as_json):
    """Notes/s of riffd's REMI encoder vs miditok's on the same files [corpus melodies]."""
    from .bench import tokenize
    tokenize(files, repeat=repeat, as_json=as_json, echo=click.echo)


@bench.command("generate")
@click.option("--models", default="rules,markov,mlx,onnx,onnx-int8", show_default=True)
@click.option("--runs", type=click.IntRange(1, 200), default=10, show_default=True, help="Seeds timed per model.")
@click.option("--replans", type=click.IntRange(0, 10000), default=200, show_default=True)
@click.option("--preset", default="folk", show_default=True)
@json_option
def bench_generate(models, runs, replans, preset, as_json):
    """16-bar generation time per backend, tokens/s, and re-plan time after a chord change."""
    from .benchgen import generate
    preset_or_exit(preset)
    check_models(models.split(","))
    generate(models.split(","), runs=runs, replans=replans, preset=preset, as_json=as_json, echo=click.echo)


@bench.command("blas")
@click.option("--steps", type=click.IntRange(1, 1000), default=20, show_default=True, help="Training steps timed.")
@json_option
def bench_blas(steps, as_json):
    """MLX matmul and training speed with OpenBLAS against the wheel's reference BLAS."""
    from .benchblas import blas
    try:
        blas(steps, as_json=as_json, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


COMMANDS = (bench,)
