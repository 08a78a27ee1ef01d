"""`riffd blend`: a checkpoint between a model and its fine-tune (models/training/blend.py)."""
from __future__ import annotations

from pathlib import Path

import click

from .cli_common import OUTPUT_FOLDER, BadInput
from .cli_models import checkpoint_path, write_onnx


@click.command()
@click.argument("base", type=click.Path(file_okay=False, path_type=Path), callback=checkpoint_path)
@click.argument("tuned", type=click.Path(file_okay=False, path_type=Path), callback=checkpoint_path)
@click.option("-o", "--output", type=OUTPUT_FOLDER, required=True,
              help="New checkpoint folder.")
@click.option("--weight", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="TUNED's share of every weight: 0 is BASE, 1 is TUNED.")
def blend(base, tuned, output, weight):
    """Blend BASE with TUNED, its fine-tune, weight by weight (WiSE-FT), into OUTPUT, and
    export it to ONNX. BASE and TUNED: checkpoint folders or shipped names (riff-small)."""
    from riffd.models.checkpoint import CheckpointError
    from riffd.models.training.blend import blend as run
    try:
        out = run(base, tuned, output, weight)
    except (CheckpointError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    click.echo(f"wrote {out / 'model.safetensors'}: {1 - weight:g} x {base} + {weight:g} x {tuned}")
    write_onnx(out, int8=True, then=f"; play it with --model {out}")


COMMANDS = (blend,)
