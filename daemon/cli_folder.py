"""`riffd watch`: the watched folder's command (daemon/watch.py does the work)."""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from .cli_common import METER, MODEL_HELP, SEED, BadInput, check_models, preset_or_exit


def watch_options(preset, model_name, seed, continue_melody, meter=None):
    """The jobs' Options; raises BadInput for a bad preset or model name."""
    from .watch import Options
    the_preset = preset_or_exit(preset)
    model = model_name or the_preset.model
    check_models([model])
    return Options(preset=preset, model=model, seed=seed, continue_melody=continue_melody,
                   model_given=model_name is not None, meter=None if meter is None else tuple(meter))


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--preset", default="pop", show_default=True,
              help="Preset for .mid inputs (a .json may name its own, which brings its model unless --model is given).")
@click.option("--model", "model_name", default=None, help=MODEL_HELP)
@click.option("--seed", type=SEED, default=None, help="Random seed (a .json may give its own).")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Worker processes [number of cores].")
@click.option("--once", is_flag=True, help="Do what is in the inbox (and any claimed file), then exit; 1 if any failed.")
@click.option("--continue", "continue_melody", is_flag=True,
              help="A .mid with a melody track: continue it instead of starting from the first chord.")
@click.option("--meter", type=METER, default=None,
              help="Play each .mid in this meter (3/4, 6/8 ...), and write it so, in place of its time signatures "
                   "[each file's; a .json gives its own].")
def watch(folder, preset, model_name, seed, jobs, once, continue_melody, meter):
    """Render chord files dropped into FOLDER/inbox/ to FOLDER/outbox/ (MIDI, WAV, PNG, report)."""
    from .watch import watch as run
    options = watch_options(preset, model_name, seed, continue_melody, meter)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    click.echo(f"riffd watch: {folder}/inbox/ -> {folder}/outbox/ (preset {preset}, model {options.model}, "
               f"{jobs or os.cpu_count()} jobs){'' if once else '; Ctrl-C stops'}", err=True)
    try:
        code = run(folder, options, jobs=jobs, once=once, stop=stop, echo=lambda line: click.echo(line, err=True))
    except OSError as exc:
        raise BadInput(f"{folder}: {exc.strerror or exc}") from None
    sys.exit(code)


COMMANDS = (watch,)
