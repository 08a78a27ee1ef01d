"""``riffd eval``: each model's melodies against real ones, over a folder's files or a
dataset's test split (models/evaluation)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_common import OUTPUT_FOLDER, SEED, BadInput, json_option, require_dataset

WHOLE = 1 << 20  # tokens: the melody suite plays whole test pieces, so their form can return


@click.command("eval")
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=Path("data/corpus"),
              show_default=True, help="Dataset folder whose test split is used when no FOLDER is given.")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Checkpoint for the test split's perplexity [the shipped riff-small].")
@click.option("--pieces", type=click.IntRange(1), default=200, show_default=True, help="Test pieces for pitch metrics.")
@click.option("--stats-pieces", type=click.IntRange(10), default=60, show_default=True,
              help="Test pieces whose chords each model plays over.")
@click.option("--models", default=None, help="Comma-separated names or checkpoint folders [rules,markov and "
              "the preset's model: onnx, riff-small, for most presets].")
@click.option("--preset", default=None, help="Preset the models play with [pop for a FOLDER, folk for the test split].")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--seeds", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Run the two-sample test with this many seeds (SEED, SEED+1, ...): per seed and the mean.")
@click.option("-o", "--out", type=OUTPUT_FOLDER, default=Path("eval-report"),
              show_default=True, help="Folder for report.md, report.json, histograms.png and pieces.png.")
@click.option("--card", is_flag=True, help="Write the test-split figures into the checkpoint's model card (README.md).")
@click.option("--humans", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder of other real music (repeatable): its melodies are told from the real ones as a "
                   "model's are, a human reference for the two-sample test.")
@click.option("--given-bars", type=click.IntRange(1), default=None,
              help="Continuations: each real melody's first N bars are given, the models go on from them (as render "
                   "--continue does) and are compared with the real melody after them.")
@click.option("--bars", type=click.IntRange(1), default=None, help="--given-bars: the bars compared [to the end].")
@click.option("--as-call", is_flag=True, help="--given-bars: the given bars are a live call and the models answer "
              "it, as in call-response mode (they hear it and may take it up).")
@json_option
def eval_(folder, data, checkpoint, pieces, stats_pieces, models, preset, seed, seeds, out, card, humans, given_bars,
          bars, as_call, as_json):
    """Melodies of each model against real ones: over the chords of FOLDER's MIDI files
    (melody track and chords found per file), or of the dataset's test split (plus its
    perplexity and accuracy against markov). With --given-bars, continuations of FOLDER's
    melodies."""
    from riffd.models.evaluation.arrangements import read_folder
    from riffd.models.evaluation.humans import read_references
    from riffd.models.evaluation.report import table, write_report
    from riffd.models.evaluation.suite import continuations, evaluate_pieces, models_to_play
    from riffd.presets import PresetError, load_preset
    if (given_bars is not None or bars is not None or as_call) and not folder:
        raise BadInput("--given-bars, --bars and --as-call are for a FOLDER of real melodies")
    if (bars is not None or as_call) and given_bars is None:
        raise BadInput("--bars and --as-call are for continuations: give --given-bars too")
    try:
        the_preset = load_preset(preset or ("pop" if folder else "folk"))
        names, note = models_to_play(models, the_preset.model)
        if note:
            click.echo(note)
        people = read_references(humans, echo=click.echo)
        if folder:
            found, files = read_folder(folder, echo=click.echo)
            if given_bars is not None:
                found = continuations(found, given_bars, bars, as_call, echo=click.echo)
            result = evaluate_pieces(found, names, the_preset, seed, echo=click.echo, seeds=seeds, humans=people)
            result["files"] = files
            if given_bars is not None:  # what was given and compared, for report.json's reader
                result["continuation"] = {"given_bars": given_bars, "bars": bars, "as_call": as_call}
        else:
            result = _test_split(data, checkpoint, pieces, stats_pieces, names, the_preset, seed, seeds, card, people)
    except (ValueError, PresetError) as exc:  # CheckpointError, an unknown model, too few pieces
        raise BadInput(str(exc)) from None
    source = str(folder or f"{data} (test split)") + ("" if given_bars is None else
                                                      f", {'answered' if as_call else 'continued'} after "
                                                      f"{given_bars} bars given")
    for path in write_report(result, out, source):
        click.echo(f"wrote {path}")
    click.echo("\n".join(table(result)))
    if as_json:
        click.echo(json.dumps(result))


def _test_split(data, checkpoint, pieces, stats_pieces, names, preset, seed, seeds, card, humans) -> dict:
    from riffd.models.checkpoint import DEFAULT, Checkpoint
    from riffd.models.evaluation.arrangements import Arrangement
    from riffd.models.evaluation.suite import WIDE_REGISTER, evaluate_pieces
    from riffd.models.training.evaluate import card_section, evaluate, test_pieces, update_card
    checkpoint = checkpoint or DEFAULT
    require_dataset(data, "test.npy")
    base = evaluate(data, checkpoint, pieces, echo=click.echo)
    check = Checkpoint.load(checkpoint)
    arrangements = Arrangement.of_split(test_pieces(data, check.vocab, WHOLE, stats_pieces), "test")
    result = evaluate_pieces(arrangements, names, preset.with_values(register=WIDE_REGISTER), seed, echo=click.echo,
                             seeds=seeds, humans=humans)
    # the card's melody table: the suite's means (each model plays the pieces once)
    base["melody_stats"] = {name: {k: row[k] for k in ("chord_tone_ratio", "pc_entropy", "notes_per_bar")}
                            for name, row in result["configs"].items()}
    if card:
        update_card(checkpoint, card_section(base, data))
    result["token_metrics"] = base
    return result


COMMANDS = (eval_,)
