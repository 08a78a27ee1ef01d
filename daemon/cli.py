"""The riffd command line (click). Exit codes: 0 done, 1 runtime failure, 2 bad usage
or bad input, with a one-line reason on stderr."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from riffd.bridges.midi import APIS, PortError
from riffd.bridges.midifile import MidiInputError

from .presets import PresetError, load_preset


class BadInput(click.ClickException):
    """Bad usage or input: exit 2."""
    exit_code = 2

    def show(self, file=None):
        click.echo(f"riffd: error: {self.format_message()}", err=True)


def _preset(name, **overrides):
    try:
        preset = load_preset(name)
        values = {k: v for k, v in overrides.items() if v is not None}
        return preset.with_values(**values) if values else preset
    except PresetError as exc:
        raise BadInput(str(exc)) from None


def _model(name):
    from riffd.models import load_model
    try:
        return load_model(name)
    except (ValueError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="riffd")
def cli():
    """riffd: play chords, get melodies back, live over MIDI or in batch."""


api_option = click.option("--midi-api", type=click.Choice(list(APIS)), default="auto", show_default=True,
                          help="MIDI backend of python-rtmidi.")


@cli.command()
@click.option("--preset", default="pop", show_default=True, help="Bundled preset name or TOML path.")
@click.option("--model", "model_name", default=None, help="rules, markov or a model path [preset's].")
@click.option("--mode", type=click.Choice(["accompany", "call-response"]), default=None, help="[preset's]")
@api_option
@click.option("--in", "in_port", default=None, help="Existing input port (name or unique part) [virtual 'riffd in'].")
@click.option("--out", "out_port", default=None, help="Existing output port [virtual 'riffd out'].")
@click.option("--clock", type=click.Choice(["internal", "midi"]), default="internal", show_default=True,
              help="Keep time by --tempo, or follow MIDI clock on the input.")
@click.option("--tempo", type=click.FloatRange(20, 400), default=None, help="BPM for the internal clock [preset's].")
@click.option("--channel", type=click.IntRange(1, 16), default=None, help="Melody MIDI channel [preset's].")
@click.option("--seed", type=int, default=None, help="Random seed for repeatable answers.")
def serve(preset, model_name, mode, midi_api, in_port, out_port, clock, tempo, channel, seed):
    """Answer chords played on the input with melody on the output, live."""
    from .serve import serve as run
    the_preset = _preset(preset)
    try:
        run(the_preset, _model(model_name or the_preset.model), mode=mode, midi_api=midi_api,
            in_port=in_port, out_port=out_port, clock=clock, tempo=tempo, channel=channel, seed=seed)
    except PortError as exc:
        raise BadInput(str(exc)) from None
    # The panic is sent and the ports are closed. Skip interpreter teardown: garbage-collecting
    # RtMidi/JACK objects at exit crashed about 1 run in 20 (SIGSEGV in the final GC pass).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@cli.command()
@api_option
def ports(midi_api):
    """List MIDI input and output ports."""
    from riffd.bridges.midi import list_ports
    try:
        inputs, outputs = list_ports(midi_api)
    except PortError as exc:
        raise BadInput(str(exc)) from None
    click.echo("inputs:")
    for name in inputs or ["(none)"]:
        click.echo(f"  {name}")
    click.echo("outputs:")
    for name in outputs or ["(none)"]:
        click.echo(f"  {name}")


@cli.command()
@click.argument("in_path", metavar="IN.mid", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output MIDI [IN-riffd.mid].")
@click.option("--preset", default="pop", show_default=True)
@click.option("--model", "model_name", default=None, help="rules, markov or a model path [preset's].")
@click.option("--seed", type=int, default=None, help="Random seed: the same seed gives the same file.")
@click.option("--chord-track", type=int, default=None, help="Index of the chord track [most polyphonic].")
def render(in_path, output, preset, model_name, seed, chord_track):
    """Write IN.mid plus a melody track 'riffd melody' to a type-1 MIDI file."""
    from .render import render_file
    the_preset = _preset(preset)
    output = output or in_path.with_name(in_path.stem + "-riffd.mid")
    try:
        report = render_file(in_path, output, the_preset, _model(model_name or the_preset.model),
                             seed=seed, chord_track=chord_track)
    except MidiInputError as exc:
        raise BadInput(str(exc)) from None
    click.echo(report.summary())


@cli.command()
@click.option("-o", "--out-dir", default="demo-out", show_default=True, type=click.Path(file_okay=False))
@click.option("--model", "model_name", default="markov", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(out_dir, model_name, seed):
    """Render real corpus progressions (a Bach chorale, a folk tune) to demo-out/."""
    from .demo import run_demo
    _model(model_name)  # a bad name fails here, before any work
    run_demo(out_dir, model_name, seed, echo=click.echo)


@cli.command()
@click.option("--arch", type=click.Choice(["markov"]), default="markov", show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("models/checkpoints/markov"), show_default=True)
@click.option("--max-order", type=click.IntRange(1, 8), default=4, show_default=True)
def train(arch, output, max_order):
    """Train a melody model on the music21 corpus (chorales and chord-symbol tunes)."""
    import json
    import time

    from riffd.models.markov import corpus_pieces, train_table
    started = time.monotonic()
    pieces = list(corpus_pieces())
    table = train_table(pieces, max_order=max_order)
    meta = {"arch": arch, "pieces": len(pieces), "notes": table.notes_seen, "max_order": max_order,
            "sources": sorted({p.source for p in pieces}), "seconds": round(time.monotonic() - started, 1)}
    table.save(output / "model.json", meta)
    (output / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    click.echo(f"trained {arch} on {len(pieces)} pieces ({table.notes_seen} notes) -> {output}")


@cli.group()
def bench():
    """Benchmarks; each takes --json and ends with one JSON object on its last line."""


@bench.command("latency")
@click.option("--chords", type=click.IntRange(10, 5000), default=215, show_default=True,
              help="Chords to strike (corpus chorales, 64 beats of each at most).")
@click.option("--tempo", type=float, default=100.0, show_default=True)
@click.option("--models", default="rules,markov", show_default=True)
@click.option("--period", type=int, default=128, show_default=True, help="JACK period (frames at 48 kHz).")
@click.option("--preset", default="pop", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_latency(chords, tempo, models, period, preset, as_json):
    """Reaction time and timing error of riffd serve over JACK, following MIDI clock."""
    from .bench import latency
    _preset(preset)
    latency(min_chords=chords, tempo=tempo, models=models.split(","), period=period, preset=preset,
            as_json=as_json, echo=click.echo)


def main():
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
