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
    """The model by name; a shipped neural model that cannot load falls back to rules
    with a warning (the daemon keeps playing); a bad path is bad input."""
    from riffd.models import NEURAL, load_model, load_or_fallback
    try:
        if name in NEURAL:
            return load_or_fallback(name, warn=lambda msg: click.echo(msg, err=True))
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
@click.option("--model", "model_name", default=None, help="rules, markov, mlx, onnx, onnx-int8 or a model path [preset's].")
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
@click.option("--model", "model_name", default=None, help="rules, markov, mlx, onnx, onnx-int8 or a model path [preset's].")
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
@click.option("--model", "model_name", default="onnx", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(out_dir, model_name, seed):
    """Render real corpus progressions (a Bach chorale, a folk tune) to demo-out/."""
    from .demo import run_demo
    _model(model_name)  # a bad name fails here, before any work
    run_demo(out_dir, model_name, seed, echo=click.echo)


def _train_options(f):
    """Options shared by train and finetune (riffd.models.train.TrainConfig)."""
    options = [
        click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Dataset folder from 'riffd dataset build'."),
        click.option("--resume", is_flag=True, help="Carry on from OUTPUT/train_state."),
        click.option("--stop-after", type=click.IntRange(1), default=None,
                     help="Run at most this many epochs now (same schedule; carry on with --resume)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--epochs", type=click.IntRange(1), default=20, show_default=True, help="Most epochs."),
        click.option("--epoch-steps", type=click.IntRange(1), default=None,
                     help="Steps per epoch [one pass over the training tokens]."),
        click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True),
        click.option("--seq-len", type=click.IntRange(16, 4096), default=256, show_default=True,
                     help="Window length in tokens (the model's context)."),
        click.option("--lr", type=float, default=1.5e-3, show_default=True, help="Peak learning rate."),
        click.option("--warmup", type=click.IntRange(0), default=200, show_default=True, help="Warmup steps."),
        click.option("--patience", type=click.IntRange(1), default=3, show_default=True,
                     help="Epochs without a better validation loss before stopping."),
        click.option("--max-minutes", type=float, default=None, help="Stop after this much training time."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _train_config(**kw):
    from riffd.models.train import TrainConfig
    return TrainConfig(seq_len=kw["seq_len"], batch_size=kw["batch_size"], learning_rate=kw["lr"],
                       warmup_steps=kw["warmup"], max_epochs=kw["epochs"], epoch_steps=kw["epoch_steps"],
                       patience=kw["patience"], max_minutes=kw["max_minutes"], seed=kw["seed"],
                       lora_rank=kw.get("lora_rank", 0), lora_layers=kw.get("lora_layers", 4))


def _run_training(data, output, init, resume, stop_after, cfg):
    from riffd.models.checkpoint import CheckpointError
    from riffd.models.train import train as run
    if data is None or not (data / "train.npy").exists():
        raise BadInput(f"--data {data}: not a dataset folder (build one with 'riffd dataset build')")
    try:
        run(data, output, cfg, init=init, resume=resume, stop_after=stop_after, log=click.echo)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise BadInput(str(exc)) from None


@cli.command()
@click.option("--arch", type=click.Choice(["llama", "markov"]), default="llama", show_default=True,
              help="llama: the transformer (mlx-lm) on --data; markov: the Continuator table on the corpus.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Checkpoint folder [models/checkpoints/riff-small, or .../markov].")
@click.option("--max-order", type=click.IntRange(1, 8), default=4, show_default=True, help="markov only.")
@_train_options
def train(arch, output, max_order, data, resume, stop_after, **kw):
    """Train a melody model: the transformer on a dataset folder, or the markov table."""
    if arch == "llama":
        _run_training(data, output or Path("models/checkpoints/riff-small"), None, resume, stop_after,
                      _train_config(**kw))
        return
    import json
    import time

    from riffd.models.markov import corpus_pieces, train_table
    output = output or Path("models/checkpoints/markov")
    started = time.monotonic()
    pieces = list(corpus_pieces())
    table = train_table(pieces, max_order=max_order)
    meta = {"arch": arch, "pieces": len(pieces), "notes": table.notes_seen, "max_order": max_order,
            "sources": sorted({p.source for p in pieces}), "seconds": round(time.monotonic() - started, 1)}
    table.save(output / "model.json", meta)
    (output / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    click.echo(f"trained {arch} on {len(pieces)} pieces ({table.notes_seen} notes) -> {output}")


@cli.command()
@click.option("--init", "init", type=click.Path(file_okay=False, path_type=Path),
              default=Path("models/checkpoints/riff-small"), show_default=True, help="Checkpoint to start from.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New checkpoint folder.")
@click.option("--lora-rank", type=click.IntRange(0, 256), default=0, show_default=True,
              help="0: train every weight; N: mlx-lm LoRA layers of rank N (folded in when saved).")
@click.option("--lora-layers", type=click.IntRange(1), default=4, show_default=True,
              help="LoRA: how many of the last layers get adapters.")
@_train_options
def finetune(init, output, lora_rank, lora_layers, data, resume, stop_after, **kw):
    """Fine-tune a checkpoint on a genre dataset (riffd dataset build --midi DIR)."""
    kw.update(lora_rank=lora_rank, lora_layers=lora_layers)
    _run_training(data, output, init, resume, stop_after, _train_config(**kw))


@cli.group()
def export():
    """Export a checkpoint for another runtime."""


@export.command("onnx")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=Path("models/checkpoints/riff-small"))
@click.option("--int8/--no-int8", default=True, show_default=True,
              help="Also write model.int8.onnx (onnxruntime dynamic quantization).")
@click.option("--portable", is_flag=True,
              help="Standard ONNX operators only, instead of onnxruntime's fused GroupQueryAttention.")
def export_onnx(checkpoint, int8, portable):
    """Write CHECKPOINT/model.onnx (KV cache in and out) from its model.safetensors."""
    from riffd.models.checkpoint import CheckpointError
    from riffd.models.onnx_export import export as run
    try:
        for path in run(checkpoint, int8=int8, fused=not portable):
            click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    except CheckpointError as exc:
        raise BadInput(str(exc)) from None


@cli.command("eval")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/corpus"),
              show_default=True, help="Dataset folder (its test split is used).")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("models/checkpoints/riff-small"), show_default=True)
@click.option("--pieces", type=click.IntRange(1), default=200, show_default=True, help="Test pieces for pitch metrics.")
@click.option("--stats-pieces", type=click.IntRange(1), default=60, show_default=True,
              help="Test pieces whose chords each model plays over.")
@click.option("--models", default="rules,markov,onnx", show_default=True)
@click.option("--card", is_flag=True, help="Write the figures into the checkpoint's model card (README.md).")
@click.option("--json", "as_json", is_flag=True)
def eval_(data, checkpoint, pieces, stats_pieces, models, card, as_json):
    """Test-split perplexity and accuracy against markov, and melody statistics per model."""
    import json

    from riffd.models.evaluate import card_section, evaluate, update_card
    if not (data / "test.npy").exists():
        raise BadInput(f"--data {data}: not a dataset folder (build one with 'riffd dataset build')")
    try:
        result = evaluate(data, checkpoint, pieces, stats_pieces, models.split(","), echo=click.echo)
    except ValueError as exc:  # CheckpointError, or an unknown model name
        raise BadInput(str(exc)) from None
    if card:
        update_card(checkpoint, card_section(result, data))
    if as_json:
        click.echo(json.dumps(result))


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


@bench.command("tokenize")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True, help="Timed passes (best kept).")
@click.option("--json", "as_json", is_flag=True)
def bench_tokenize(files, repeat, as_json):
    """Notes/s of riffd's REMI encoder vs miditok's on the same files [corpus melodies]."""
    from .bench import tokenize
    tokenize(files, repeat=repeat, as_json=as_json, echo=click.echo)


@bench.command("generate")
@click.option("--models", default="rules,markov,mlx,onnx,onnx-int8", show_default=True)
@click.option("--runs", type=click.IntRange(1, 200), default=10, show_default=True, help="Seeds timed per model.")
@click.option("--replans", type=click.IntRange(0, 10000), default=200, show_default=True)
@click.option("--preset", default="folk", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_generate(models, runs, replans, preset, as_json):
    """16-bar generation time per backend, tokens/s, and re-plan time after a chord change."""
    from .benchgen import generate
    _preset(preset)
    from riffd.models import load_model
    for name in models.split(","):
        try:
            load_model(name)  # a bad name or a missing checkpoint fails before any timing
        except (ValueError, OSError) as exc:
            raise BadInput(str(exc)) from None
    generate(models.split(","), runs=runs, replans=replans, preset=preset, as_json=as_json, echo=click.echo)


@bench.command("blas")
@click.option("--steps", type=click.IntRange(1, 1000), default=20, show_default=True, help="Training steps timed.")
@click.option("--json", "as_json", is_flag=True)
def bench_blas(steps, as_json):
    """MLX matmul and training speed with OpenBLAS against the wheel's reference BLAS."""
    from .benchblas import blas
    try:
        blas(steps, as_json=as_json, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@cli.group()
def dataset():
    """Build, inspect and export the token dataset the melody models learn from."""


@dataset.command("build")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("data/corpus"),
              show_default=True)
@click.option("--sources", default="chorales,tunes,essen,oneill,ryans", show_default=True,
              help="Corpus sources, comma-separated; 'none' for only --midi/--synthetic.")
@click.option("--midi", "midi_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Also a folder of your MIDI files (chord and melody tracks found as in render).")
@click.option("--synthetic", type=click.IntRange(0, 100000), default=0, show_default=True,
              help="Pieces from the rules model in random keys, tempos and styles.")
@click.option("--keys", default="all", show_default=True,
              help="Transpositions for the training split: all (12 keys), none, or semitones like -2,0,2.")
@click.option("--max-polyphony", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--min-range", type=int, default=12, show_default=True, help="Smallest melody range, semitones.")
@click.option("--max-range", type=int, default=36, show_default=True, help="Largest melody range, semitones.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many files per source.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Worker processes [cores].")
@click.option("--seed", type=int, default=0, show_default=True)
def dataset_build(output, sources, midi_dir, synthetic, keys, max_polyphony, min_range, max_range, limit, jobs, seed):
    """Read, filter, split (80/10/10 by piece), augment and tokenize."""
    from riffd.models.dataset import CORPUS_SOURCES, Filters, build
    names = [] if sources == "none" else [s.strip() for s in sources.split(",") if s.strip()]
    unknown = [s for s in names if s not in CORPUS_SOURCES]
    if unknown:
        raise BadInput(f"unknown source {unknown[0]!r} (choose from {', '.join(CORPUS_SOURCES)})")
    try:
        shifts = (list(range(-5, 7)) if keys == "all" else [0] if keys == "none"
                  else sorted({int(k) for k in keys.split(",")}))
    except ValueError:
        raise BadInput(f"--keys {keys!r}: use all, none, or semitones like -2,0,2") from None
    summary = build(output, names, midi_dir, synthetic, shifts, Filters(max_polyphony, min_range, max_range),
                    limit, jobs, seed)
    click.echo(f"{output}: {sum(summary['sequences'].values())} sequences "
               f"({', '.join(f'{k} {v}' for k, v in summary['sequences'].items())}), "
               f"{sum(summary['tokens'].values()):,} tokens in {summary['seconds']} s; "
               f"rejected: {summary['rejected'] or 'none'}")


@dataset.command("stats")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to draw pitches and chord qualities [FOLDER/stats.png].")
@click.option("--json", "as_json", is_flag=True)
def dataset_stats(folder, png, as_json):
    """Counts, token histogram by type, and a plot of pitch and chord-quality distributions."""
    import json
    from riffd.models.datastats import stats
    if not (folder / "tokenizer.json").exists():
        raise BadInput(f"{folder}: not a dataset folder (no tokenizer.json); run riffd dataset build")
    result = stats(folder, png)
    for split, c in result["splits"].items():
        click.echo(f"{split:>6}: {c['sequences']:6d} sequences {c['tokens']:10,d} tokens")
    click.echo("tokens by type: " + ", ".join(f"{k} {v:,}" for k, v in result["tokens_by_type"].items() if v))
    click.echo("chord qualities: " + ", ".join(f"{k} {v:,}" for k, v in result["chord_qualities"].items()))
    click.echo(f"rejected: {result['rejected'] or 'none'}; plot: {png or folder / 'stats.png'}")
    if as_json:
        click.echo(json.dumps(result))


@dataset.command("export")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "mlx-chat"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for train/valid/test.jsonl [FOLDER/FORMAT].")
def dataset_export(folder, fmt, output):
    """JSONL for mlx-lm (text or chat), each line read back and checked against the ids."""
    from riffd.models.datatext import export
    if not (folder / "tokenizer.json").exists():
        raise BadInput(f"{folder}: not a dataset folder (no tokenizer.json); run riffd dataset build")
    out = output or folder / fmt
    written = export(folder, out, fmt)
    click.echo(f"{out}: " + ", ".join(f"{k}.jsonl {v} lines" for k, v in written.items()) + "; round trip checked")


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
