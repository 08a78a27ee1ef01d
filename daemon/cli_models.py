"""Commands of the model pipeline: dataset, train, finetune, export, calibrate (eval: cli_eval)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from riffd.models import SHIPPED

from .cli_common import OUTPUT_FOLDER, POSITIVE, SEED, SEMITONES, BadInput, json_option, repeats_option, require_dataset

RIFF_SMALL = Path("models/checkpoints/riff-small")  # train's output, relative to where it runs
SHIPPED_SMALL = SHIPPED / "riff-small"  # finetune's start and export's default, wherever riffd runs
# finetune --midi's defaults: 500 songs stay under 20 minutes in all on 2 cores (riffd bench
# finetune), and validation every 150 steps lets early stopping act within that time
MIDI_TRAIN_MINUTES, MIDI_EPOCH_STEPS = 12.0, 150
# Peak learning rate and epochs (the cosine's length). LoRA from riff-small on 500
# Palestrina movements: at 1.5e-3 the validation loss was best after the first epoch and
# rose after (0.756 -> 0.813); at 5e-4 it fell to 0.614 in 12 minutes with the cosine
# barely begun, and to 0.610 with the cosine over 9 epochs (docs/measured.md, "A gentler learning rate")
TRAIN_LR, TRAIN_EPOCHS, MIDI_LR, MIDI_EPOCHS = 1.5e-3, 20, 5e-4, 9
# finetune --midi trains every weight: on the same 500 movements, test perplexity 1.78
# against LoRA rank 8's 1.84 and told from real 0.698 against 0.735 (ten seeds), in the same
# time and size; on 100, 1.89 against 1.92 (docs/measured.md, "Every weight, not LoRA")
DATA_LORA_RANK, MIDI_LORA_RANK = 8, 0


def checkpoint_path(ctx, param, value: Path) -> Path:
    """A checkpoint option's folder: a shipped checkpoint's name (riff-chorale) means its
    folder in models/checkpoints unless a folder of that name is here."""
    shipped = SHIPPED / str(value)
    return shipped if not value.exists() and len(value.parts) == 1 and shipped.is_dir() else value


def train_options(f):
    """Options shared by train and finetune (riffd.models.training.train.TrainConfig)."""
    options = [
        click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Dataset folder from 'riffd dataset build'."),
        click.option("--resume", is_flag=True, help="Carry on from OUTPUT/train_state."),
        click.option("--stop-after", type=click.IntRange(1), default=None,
                     help="Run at most this many epochs now (same schedule; carry on with --resume)."),
        click.option("--seed", type=SEED, default=0, show_default=True),
        click.option("--epochs", type=click.IntRange(1), default=None,
                     help=f"Most epochs; the learning rate's cosine ends there [{TRAIN_EPOCHS}; finetune --midi: "
                          f"{MIDI_EPOCHS}]."),
        click.option("--epoch-steps", type=click.IntRange(1), default=None,
                     help="Steps per epoch [one pass over the training tokens]."),
        click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True),
        click.option("--seq-len", type=click.IntRange(16, 4096), default=256, show_default=True,
                     help="Window length in tokens (the model's context)."),
        click.option("--lr", type=POSITIVE, default=None,
                     help=f"Peak learning rate [{TRAIN_LR:g}; finetune --midi: {MIDI_LR:g}]."),
        click.option("--warmup", type=click.IntRange(0), default=200, show_default=True, help="Warmup steps."),
        click.option("--patience", type=click.IntRange(1), default=3, show_default=True,
                     help="Epochs without a better validation loss before stopping."),
        click.option("--max-minutes", type=POSITIVE, default=None, help="Stop after this much training time."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def training_config(kw: dict):
    """riffd.models.training.train.TrainConfig from the CLI's options ``kw``."""
    from riffd.models.training.train import TrainConfig
    return TrainConfig(seq_len=kw["seq_len"], batch_size=kw["batch_size"],
                       learning_rate=TRAIN_LR if kw["lr"] is None else kw["lr"], warmup_steps=kw["warmup"],
                       max_epochs=kw["epochs"] or TRAIN_EPOCHS, epoch_steps=kw["epoch_steps"],
                       patience=kw["patience"], max_minutes=kw["max_minutes"], seed=kw["seed"],
                       lora_rank=kw.get("lora_rank", 0), lora_layers=kw.get("lora_layers", 4))


def run_training(data, output, init, resume, stop_after, **kw):
    """Train or fine-tune with the CLI's options ``kw``; bad data or a bad checkpoint is BadInput."""
    from riffd.models.checkpoint import CheckpointError
    from riffd.models.training.train import train
    require_dataset(data)
    try:
        train(data, output, training_config(kw), init=init, resume=resume, stop_after=stop_after, log=click.echo)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise BadInput(str(exc)) from None


@click.command()
@click.option("--arch", type=click.Choice(["llama", "markov"]), default="llama", show_default=True,
              help="llama: the transformer (mlx-lm) on --data; markov: the Continuator table on the corpus.")
@click.option("-o", "--output", type=OUTPUT_FOLDER, default=None,
              help="Checkpoint folder [models/checkpoints/riff-small, or .../markov].")
@click.option("--max-order", type=click.IntRange(1, 8), default=4, show_default=True, help="markov only.")
@train_options
def train(arch, output, max_order, data, resume, stop_after, **kw):
    """Train a melody model: the transformer on a dataset folder, or the markov table."""
    if arch == "llama":
        run_training(data, output or RIFF_SMALL, None, resume, stop_after, **kw)
        return
    from riffd.models.training.markov_train import train_markov
    output = output or Path("models/checkpoints/markov")
    meta = train_markov(output, max_order)
    click.echo(f"trained markov on {meta['pieces']} pieces ({meta['notes']} notes) -> {output}")


@click.command()
@click.option("--init", "init", type=click.Path(file_okay=False, path_type=Path), default=SHIPPED_SMALL,
              callback=checkpoint_path, show_default="riff-small, the shipped one",
              help="Checkpoint to start from: a folder, or a shipped one's name (riff-chorale).")
@click.option("-o", "--output", type=OUTPUT_FOLDER, required=True,
              help="New checkpoint folder.")
@click.option("--midi", "midi_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A folder of your arrangements: build OUTPUT/dataset from it, fine-tune, export ONNX, "
                   "and evaluate the held-out songs before and after (instead of --data). "
                   f"--max-minutes, --epoch-steps, --epochs and --lr then default to {MIDI_TRAIN_MINUTES:g}, "
                   f"{MIDI_EPOCH_STEPS}, {MIDI_EPOCHS} and {MIDI_LR:g}.")
@click.option("--style", default=None,
              help="--midi: the style token your songs are learned under [the --preset's style]; play them "
                   "with a preset of this style.")
@click.option("--preset", default="pop", show_default=True, help="--midi: the preset of the before/after evaluation.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="--midi: processes reading files [cores].")
@click.option("--calibration-songs", type=click.IntRange(2), default=None,
              help="--midi: training songs the sampling calibration is fitted on [200].")
@click.option("--lora-rank", type=click.IntRange(0, 256), default=None,
              help="0: train every weight; N: mlx-lm LoRA layers of rank N (folded in when saved) "
                   f"[--data: {DATA_LORA_RANK}; --midi: {MIDI_LORA_RANK}].")
@click.option("--lora-layers", type=click.IntRange(1), default=4, show_default=True,
              help="LoRA: how many of the last layers get adapters.")
@train_options
def finetune(init, output, midi_dir, style, preset, jobs, calibration_songs, data, resume, stop_after, **kw):
    """Fine-tune a checkpoint on your genre: a folder of MIDI arrangements (--midi DIR),
    or a dataset built before (--data DIR); either way OUTPUT/model.onnx is written too."""
    if (midi_dir is None) == (data is None):
        raise BadInput("give one of --midi DIR (your arrangements) or --data DIR (a built dataset)")
    if data is not None:
        kw["lora_rank"] = DATA_LORA_RANK if kw["lora_rank"] is None else kw["lora_rank"]
        run_training(data, output, init, resume, stop_after, **kw)
        # --model OUTPUT (or its folder name in models/checkpoints) then plays on onnxruntime
        write_onnx(output, int8=False, then=f"; play it: --model {output}")
        return
    from riffd.models.checkpoint import CheckpointError
    from riffd.models.evaluation.suite import told
    from riffd.models.training.finetune import finetune_midi
    from riffd.presets import PresetError, load_preset
    from riffd.models.tokens import STYLES
    if style is not None and style not in STYLES:
        raise BadInput(f"unknown style {style!r} (choose {', '.join(STYLES)})")
    kw["max_minutes"] = kw["max_minutes"] or MIDI_TRAIN_MINUTES
    kw["epoch_steps"] = kw["epoch_steps"] or MIDI_EPOCH_STEPS
    kw["lr"] = MIDI_LR if kw["lr"] is None else kw["lr"]
    kw["epochs"] = kw["epochs"] or MIDI_EPOCHS
    kw["lora_rank"] = MIDI_LORA_RANK if kw["lora_rank"] is None else kw["lora_rank"]
    try:
        result = finetune_midi(midi_dir, output, init, training_config(kw), load_preset(preset), style, jobs,
                               kw["seed"], log=click.echo, resume=resume, stop_after=stop_after,
                               calibration_songs=calibration_songs)
    except (CheckpointError, PresetError, FileNotFoundError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    for name in ("before", "after") if "eval" in result else ():
        row = result["eval"][name]
        click.echo(f"{name}: told from real {told(row)}, composite {row['composite']:.3f}, "
                   f"chord tones {row['chord_tone_ratio']:.2f}, notes/bar {row['notes_per_bar']:.2f}")
    for test in result.get("eval_tests", []):
        click.echo(f"closer to the held-out songs: {test['closer']} (Wilcoxon p {test['p']:g}, {test['pieces']} songs)")
    minutes = result["minutes"]
    click.echo(f"riffd finetune: {minutes['total']:.1f} min (" + ", ".join(f"{k} {v:.1f}" for k, v in minutes.items()
                                                                     if k != "total") + f"); play it: --model {output}")


@click.group()
def export():
    """Export a checkpoint for another runtime."""


@export.command("onnx")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path), default=SHIPPED_SMALL)
@click.option("--int8/--no-int8", default=True, show_default=True,
              help="Also write model.int8.onnx (onnxruntime dynamic quantization).")
@click.option("--portable", is_flag=True,
              help="Standard ONNX operators only (float32), instead of onnxruntime's fused GroupQueryAttention.")
@click.option("--float32", "float32", is_flag=True,
              help="model.onnx with float32 weights instead of 8-bit blocks "
                   "(about twice the cost of a one-token call).")
def export_onnx(checkpoint, int8, portable, float32):
    """Write CHECKPOINT/model.onnx (KV cache in and out) from its model.safetensors."""
    write_onnx(checkpoint, int8=int8, fused=not portable, weights="float32" if float32 else "q8")


def write_onnx(checkpoint: Path, int8: bool, fused: bool = True, then: str = "", weights: str = "q8") -> None:
    """Export ``checkpoint`` to ONNX, one line per file written (``then`` appended); a
    checkpoint that cannot be exported is BadInput."""
    from riffd.models.checkpoint import CheckpointError
    from riffd.models.training.onnx_export import export as run
    try:
        for path in run(checkpoint, int8=int8, fused=fused, weights=weights):
            click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB){then}")
    except CheckpointError as exc:
        raise BadInput(str(exc)) from None


@click.command()
@click.argument("checkpoint")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset folder whose training split the model plays.")
@click.option("--preset", required=True, help="Preset the model plays with (the one that will play it).")
@click.option("--pieces", type=click.IntRange(2), default=300, show_default=True,
              help="Training pieces, spread over the split.")
@click.option("--iterations", type=click.IntRange(1, 10), default=3, show_default=True)
@click.option("--seed", type=SEED, default=100, show_default=True)
@click.option("--tables", default="interval,chord_pc,centre,memory,duration", show_default=True,
              help="Tables to fit: interval (from the previous pitch), chord_pc (above the chord's root), "
                   "centre (from the mean of the line's last 64 pitches), memory (the pitch class's count "
                   "in the line's last 16 notes), duration (the Duration token's bin).")
def calibrate(checkpoint, data, preset, pieces, iterations, seed, tables):
    """Fit CHECKPOINT's sampling calibration (a shipped checkpoint's name or a folder):
    the model plays the chords of the dataset's training split, and tables of logit
    corrections (by interval, by pitch class above the chord's root, by distance from the
    line's centre, by how often the pitch class sounded lately, by Duration) move until
    its melodies keep the real ones' shares; written to CHECKPOINT/calibration.json, which
    serve, render and eval then use. A calibration already there is refitted."""
    from riffd.models import checkpoint_folder
    from riffd.models.calibration import CalibrationError
    from riffd.models.evaluation.calibrate import TABLES, calibrate_checkpoint
    from riffd.presets import PresetError, load_preset
    chosen = tuple(t.strip() for t in tables.split(",") if t.strip())
    if not chosen or set(chosen) - set(TABLES):
        raise BadInput(f"unknown table in {tables!r} (choose from {', '.join(TABLES)})")
    require_dataset(data, "train.npy")
    folder = checkpoint_folder(checkpoint)
    try:
        result = calibrate_checkpoint(folder, data, load_preset(preset), pieces, iterations, seed, chosen,
                                      echo=click.echo)
    except (ValueError, PresetError, CalibrationError) as exc:
        raise BadInput(str(exc)) from None
    click.echo(f"wrote {folder / 'calibration.json'} (round {result.meta['round_kept']} kept)")


@click.group()
def dataset():
    """Build, inspect and export the token dataset the melody models learn from."""


@dataset.command("build")
@click.option("-o", "--output", type=OUTPUT_FOLDER, default=Path("data/corpus"),
              show_default=True)
@click.option("--sources", default="chorales,tunes,essen,oneill,ryans", show_default=True,
              help="Corpus sources, comma-separated; 'none' for only --midi/--synthetic.")
@click.option("--midi", "midi_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Also a folder of your arrangements (melody track and chords found as in riffd eval).")
@click.option("--synthetic", type=click.IntRange(0, 100000), default=0, show_default=True,
              help="Pieces from the rules model in random keys, tempos and styles.")
@click.option("--keys", default="all", show_default=True,
              help="Transpositions for the training split: all (12 keys), none, or semitones (-11 to 11) like -2,0,2.")
@click.option("--max-polyphony", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--min-range", type=SEMITONES, default=12, show_default=True, help="Smallest melody range, semitones.")
@click.option("--max-range", type=SEMITONES, default=36, show_default=True, help="Largest melody range, semitones.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many files per source.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Worker processes [cores].")
@click.option("--seed", type=SEED, default=0, show_default=True)
@repeats_option
def dataset_build(output, sources, midi_dir, synthetic, keys, max_polyphony, min_range, max_range, limit, jobs, seed,
                  repeats):
    """Read, filter, split (80/10/10 by piece), augment and tokenize."""
    from riffd.models.training.dataset import Filters, build, parse_keys, parse_sources, summary_line
    try:
        summary = build(output, parse_sources(sources), midi_dir, synthetic, parse_keys(keys),
                        Filters(max_polyphony, min_range, max_range), limit, jobs, seed, repeats=repeats)
    except ValueError as exc:  # a bad --sources, --keys or range, or nothing to read
        raise BadInput(str(exc)) from None
    click.echo(summary_line(output, summary))
    if not sum(summary["sequences"].values()):  # every piece rejected: nothing to train on
        raise BadInput(f"{output}: no piece was kept (rejected: {summary['rejected']})")


@dataset.command("songs")
@click.option("-o", "--output", type=OUTPUT_FOLDER, required=True)
@click.option("--source", default="corpus", show_default=True,
              help="corpus: chorales, Ryan's tunes; airds, essen, oneill or ryans: that collection, chords estimated "
                   "(airds never trained on); or a music21 corpus composer or folder (palestrina, joplin, leadSheet "
                   "...), a track a part, a lead sheet as its tune over its chord symbols.")
@click.option("--count", type=click.IntRange(1, 5000), default=100, show_default=True)
@click.option("--skip", type=click.IntRange(0), default=0, show_default=True,
              help="Start after this many works: --skip 0, N, 2N ... with --count N write disjoint folders.")
@repeats_option
def dataset_songs(output, source, count, skip, repeats):
    """Write corpus works as a user's MIDI files (for riffd eval and finetune --midi)."""
    from riffd.models.training.songfiles import TUNES, write_scores, write_songs
    try:
        written, skipped = (write_songs(output, count, None if source == "corpus" else source, skip, repeats), []) \
            if source == "corpus" or source in TUNES else write_scores(output, source, count, skip, repeats)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    for name, why in skipped:
        click.echo(f"riffd dataset songs: {name}: left out: {why}", err=True)
    click.echo(f"{output}: {len(written)} MIDI files" + (f" ({len(skipped)} left out)" if skipped else ""))


@dataset.command("stats")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to draw pitches and chord qualities [FOLDER/stats.png].")
@json_option
def dataset_stats(folder, png, as_json):
    """Counts, token histogram by type, and a plot of pitch and chord-quality distributions."""
    from riffd.models.training.datastats import stats, summary_lines
    require_dataset(folder, "tokenizer.json")
    result = stats(folder, png)
    for line in summary_lines(result, png or folder / "stats.png"):
        click.echo(line)
    if as_json:
        click.echo(json.dumps(result))


@dataset.command("export")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "mlx-chat"]), default="text", show_default=True)
@click.option("-o", "--output", type=OUTPUT_FOLDER, default=None,
              help="Folder for train/valid/test.jsonl [FOLDER/FORMAT].")
def dataset_export(folder, fmt, output):
    """JSONL for mlx-lm (text or chat), each line read back and checked against the ids."""
    from riffd.models.training.datatext import export as run
    require_dataset(folder, "tokenizer.json")
    out = output or folder / fmt
    written = run(folder, out, fmt)
    click.echo(f"{out}: " + ", ".join(f"{k}.jsonl {v} lines" for k, v in written.items()) + "; round trip checked")


COMMANDS = (dataset, train, finetune, export, calibrate)
