"""The sampling calibration (models/calibration.py, models/evaluation/calibrate.py,
``riffd calibrate``): its tables, its file, and its fit on real chorales."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from riffd.models import SHIPPED, load_model, load_or_fallback
from riffd.models.calibration import (CENTRE_NOTES, FILE, MEMORY_NOTES, Calibration, CalibrationError, centre_of,
                                     duration_bin)
from riffd.models.evaluation.arrangements import Arrangement
from riffd.models.evaluation.calibrate import fit, shares
from riffd.models.evaluation.suite import play
from riffd.models.protocol import ChordAt, MelodyNote
from riffd.models.remi import RemiTokenizer
from riffd.models.training.evaluate import test_pieces as split_pieces
from riffd.music.chords import parse_chord
from riffd.presets import load_preset
from conftest import run_riffd


def chorale_copy(folder: Path) -> Path:
    """riff-chorale's weights and export in ``folder``, without its calibration."""
    shutil.copytree(SHIPPED / "riff-chorale", folder, ignore=shutil.ignore_patterns(FILE, "train_state"))
    return folder


@pytest.fixture(scope="module")
def chorales(tmp_path_factory):
    """A dataset of 60 Bach chorales (soprano over the chords of the lower voices)."""
    from riffd.models.training.dataset import build
    out = tmp_path_factory.mktemp("chorales") / "data"
    build(out, sources=("chorales",), keys=[0], limit=60, jobs=1, log=lambda *a: None)
    return out


def test_bias_reads_the_interval_and_the_chord_tables():
    interval, chord_pc = np.zeros(25), np.zeros((2, 12))
    interval[12 + 2], interval[0] = 1.5, -2.0  # a step up; -12 and below share bin 0
    chord_pc[1, 4], chord_pc[0, 4] = 0.5, -0.25  # a major third above the root: tone of C, not of Cm
    cal = Calibration(interval, chord_pc)
    pitches = np.array([62, 45, 64, 60])
    assert cal.bias(pitches, 60, None).tolist() == [1.5, -2.0, 0.0, 0.0]
    assert cal.bias(pitches, None, parse_chord("C")).tolist() == [0.0, 0.0, 0.5, 0.0]
    assert cal.bias(pitches, 60, parse_chord("Cm")).tolist() == [1.5, -2.0, -0.25, 0.0]
    assert not Calibration.zero().bias(pitches, 60, parse_chord("C")).any()


def test_the_centre_table_reads_the_distance_from_the_lines_mean():
    centre = np.zeros(25)
    centre[12 + 5], centre[12 - 7] = 1.0, -2.0
    cal = Calibration(np.zeros(25), np.zeros((2, 12)), {}, centre)
    pitches = np.array([65, 53, 60, 90])
    line = [60, 60, 60, 61, 60]  # centre 60.2: 4.8 and -7.2 round to 5 and -7
    assert cal.bias(pitches, None, None, line).tolist() == [1.0, -2.0, 0.0, 0.0]
    assert not cal.bias(pitches, None, None, []).any()  # no line yet: no centre
    assert centre_of([]) is None and centre_of([60, 64]) == 62.0
    assert centre_of(list(range(100))) == np.mean(range(100 - CENTRE_NOTES, 100))  # the last CENTRE_NOTES


def test_the_memory_table_reads_how_often_the_pitch_class_sounded_lately():
    memory = np.array([-1.0, 0.5, 0.0, 0.0, 0.0, 2.0])
    cal = Calibration(np.zeros(25), np.zeros((2, 12)), {}, np.zeros(25), memory)
    line = [62] * 30 + [60] * (MEMORY_NOTES - 1) + [72]  # C 16 times in the window, D only before it
    assert cal.bias(np.array([48, 62, 64]), None, None, line).tolist() == [2.0, -1.0, -1.0]
    assert cal.bias(np.array([62, 64]), None, None, [50, 52]).tolist() == [0.5, 0.5]


def test_shares_count_distances_from_the_centre_as_the_bias_reads_them():
    piece = Arrangement("p", [], [], (4, 4), 90.0, 16.0)
    notes = [MelodyNote(float(i), 1.0, p, 80) for i, p in enumerate([60, 62, 64, 72])]
    notes.append(MelodyNote(4.0, 1.0, 48, 80))
    interval, _, centre, memory, duration = shares([notes], [piece])
    assert duration.shape == (0,)  # no Duration bins without the tokenizer's tables
    assert interval[12 + 2] == pytest.approx(2 / 4) and interval[12 + 8] == interval[0] == pytest.approx(1 / 4)
    # 62 - 60, 64 - 61, 72 - 62, 48 - 64.5: bins +2, +3, +10, -12 (clipped)
    assert centre[12 + 2] == centre[12 + 3] == centre[12 + 10] == centre[0] == pytest.approx(1 / 4)
    assert memory.tolist() == pytest.approx([2 / 4, 1 / 4, 1 / 4, 0, 0, 0])  # 62, 64 new; a C after one C, then two


def test_shares_count_durations_in_the_bins_of_the_duration_tokens():
    """A quarter, a half and a whole note: in 4/4 three bins; in 4/2 (12 positions per
    half note) the same lengths are the bins of 6, 12 and 24 positions of 4/4."""
    tables = RemiTokenizer().tables
    notes = [MelodyNote(0.0, 1.0, 60, 80), MelodyNote(1.0, 2.0, 62, 80), MelodyNote(3.0, 4.0, 64, 80),
             MelodyNote(7.0, 1.0, 65, 80)]
    for meter, positions in (((4, 4), (12, 24, 48)), ((4, 2), (6, 12, 24))):
        duration = shares([notes], [Arrangement("p", [], [], meter, 90.0, 8.0)], tables)[4]
        bins = [tables.duration_bin(q) for q in positions]
        assert len(set(bins)) == 3 and duration.shape == (len(tables.dur_ids),)
        assert duration[bins].tolist() == pytest.approx([2 / 4, 1 / 4, 1 / 4]) and duration.sum() == pytest.approx(1)
        assert [duration_bin(tables, n.duration, meter[1]) for n in notes[:3]] == bins


def test_the_file_round_trips_and_a_bad_one_is_named(tmp_path):
    cal = Calibration(np.linspace(-1, 1, 25), np.arange(24.0).reshape(2, 12) / 5, {"pieces": 3})
    cal.save(tmp_path)
    back = Calibration.load(tmp_path)  # kept to 4 decimals; a table edited by hand is clipped to 3 nats
    assert np.allclose(back.interval, cal.interval, atol=1e-4) and not back.uses_centre
    assert np.allclose(back.chord_pc, np.minimum(cal.chord_pc, 3.0), atol=1e-4) and back.chord_pc.max() == 3.0
    assert back.meta == {"pieces": 3} and [p.name for p in tmp_path.iterdir()] == [FILE]
    assert Calibration.load(tmp_path / "nothing") is None
    Calibration(cal.interval, cal.chord_pc, {}, np.linspace(-4, 4, 25), np.arange(6.0) / 4).save(tmp_path)
    back = Calibration.load(tmp_path)
    assert np.allclose(back.centre, np.clip(np.linspace(-4, 4, 25), -3, 3), atol=1e-4)
    assert np.allclose(back.memory, np.arange(6.0) / 4) and back.uses_memory and back.duration_bias(3) is None
    Calibration(cal.interval, cal.chord_pc, {}, duration=np.array([0.5, -4.0, 0.0])).save(tmp_path)
    back = Calibration.load(tmp_path)
    assert back.duration_bias(3).tolist() == [0.5, -3.0, 0.0] and not back.uses_centre
    with pytest.raises(CalibrationError, match="3 numbers"):
        back.duration_bias(4)  # another vocabulary's table
    for text in ("{", json.dumps({"interval": [0] * 24, "chord_pc": [[0] * 12] * 2}),
                 json.dumps({"interval": [0] * 25, "chord_pc": [[0] * 12] * 2, "centre": [0] * 12}),
                 json.dumps({"interval": [0] * 25, "chord_pc": [[0] * 12] * 2, "memory": [0] * 25}),
                 json.dumps({"interval": [0] * 25, "chord_pc": [[0] * 12] * 2, "duration": [[0.5]]}),
                 json.dumps({"interval": [0] * 25, "chord_pc": [0] * 12})):
        (tmp_path / FILE).write_text(text)
        with pytest.raises(CalibrationError, match=FILE):
            Calibration.load(tmp_path)


def test_a_checkpoint_loads_its_calibration_and_a_corrupt_one_falls_back_to_rules(tmp_path):
    folder = chorale_copy(tmp_path / "ckpt")
    assert load_model(str(folder)).calibration is None  # no file: plays uncorrected
    Calibration(np.full(25, 0.5), np.zeros((2, 12))).save(folder)
    assert (load_model(str(folder)).calibration.interval == 0.5).all()
    (folder / FILE).write_text("not json")
    warnings = []
    assert load_or_fallback(str(folder), warn=warnings.append).name == "rules"
    assert FILE in warnings[0]
    Calibration(np.zeros(25), np.zeros((2, 12)), duration=np.ones(5)).save(folder)  # not this vocabulary's bins
    assert load_or_fallback(str(folder), warn=warnings.append).name == "rules"
    assert "Duration bins" in warnings[1]


def test_a_calibration_moves_what_the_model_plays(tmp_path):
    """Three nats off every repeated pitch, and the model repeats pitches far less often."""
    folder = chorale_copy(tmp_path / "ckpt")
    chords = [ChordAt(4.0 * k, parse_chord(name)) for k, name in enumerate(["C", "Am", "F", "G"] * 8)]
    piece = Arrangement("p", [], chords, (4, 4), 90.0, 128.0)
    preset = load_preset("chorale").with_values(repeated_note_penalty=0.0)
    share = {}
    for nats in (0.0, -3.0):
        interval = np.zeros(25)
        interval[12] = nats
        Calibration(interval, np.zeros((2, 12))).save(folder)
        notes = [n for seed in range(3) for n in play(str(folder), [piece], preset, seed)[0]]
        share[nats] = np.mean([a.pitch == b.pitch for a, b in zip(notes, notes[1:])])
    assert share[0.0] > 0.08 and share[-3.0] < share[0.0] / 3


def test_a_centre_table_keeps_the_line_near_its_centre(tmp_path):
    """Three nats off every pitch more than a fourth from the line's mean: a narrower range."""
    folder = chorale_copy(tmp_path / "ckpt")
    chords = [ChordAt(4.0 * k, parse_chord(name)) for k, name in enumerate(["C", "Am", "F", "G"] * 16)]
    piece = Arrangement("p", [], chords, (4, 4), 90.0, 256.0)
    preset = load_preset("chorale").with_values(register=[48, 96])
    away = {}
    for nats in (0.0, -3.0):
        centre = np.where(np.abs(np.arange(-12, 13)) > 5, nats, 0.0)
        Calibration(np.zeros(25), np.zeros((2, 12)), {}, centre).save(folder)
        melodies = [play(str(folder), [piece], preset, seed)[0] for seed in range(3)]
        away[nats] = shares(melodies, [piece] * 3)[2][np.abs(np.arange(-12, 13)) > 5].sum()
    assert away[0.0] > 0.03 and away[-3.0] < away[0.0] / 3


def test_a_duration_table_moves_the_rhythm(tmp_path):
    """Three nats off every Duration shorter than a half note: fewer short notes."""
    folder = chorale_copy(tmp_path / "ckpt")
    tables = load_model(str(folder)).tables
    chords = [ChordAt(4.0 * k, parse_chord(name)) for k, name in enumerate(["C", "Am", "F", "G"] * 8)]
    piece = Arrangement("p", [], chords, (4, 4), 90.0, 128.0)
    short = np.asarray(tables.dur_ticks) < 2 * tables.P
    share = {}
    for nats in (0.0, -3.0):
        Calibration(np.zeros(25), np.zeros((2, 12)), duration=np.where(short, nats, 0.0)).save(folder)
        melodies = [play(str(folder), [piece], load_preset("chorale"), seed)[0] for seed in range(3)]
        share[nats] = shares(melodies, [piece] * 3, tables)[4][short].sum()
    assert share[0.0] > 0.5 and share[-3.0] < share[0.0] / 2


def test_the_fit_brings_the_shares_closer_on_pieces_it_did_not_fit(chorales, tmp_path):
    """Fitted on the training split, judged on the validation split's chords with other seeds."""
    folder = chorale_copy(tmp_path / "ckpt")
    model = load_model(str(folder))
    preset = load_preset("chorale").with_values(register=[55, 88])

    def pieces(split):
        return Arrangement.of_split(split_pieces(chorales, model.vocab, 1 << 20, 40, split=split), split)

    cal = fit(model, pieces("train"), preset, iterations=2, echo=lambda *a: None)
    assert cal.meta["round_kept"] > 0 and cal.interval.any() and cal.chord_pc.any() and cal.uses_duration
    held_out = pieces("valid")
    real = shares([p.melody for p in held_out], held_out, model.tables)

    def distance(calibration):
        model.calibration = calibration
        played = [shares(play(model, held_out, preset, seed), held_out, model.tables) for seed in (7, 8)]
        return np.mean([sum(np.abs(r - p).sum() for r, p in zip(real, one)) for one in played])
    assert distance(cal) < distance(Calibration.zero())


def test_calibrate_cli_writes_the_file_that_render_then_plays(chorales, tmp_path):
    folder = chorale_copy(tmp_path / "ckpt")
    done = run_riffd("calibrate", str(folder), "--data", str(chorales), "--preset", "chorale", "--pieces", "8",
                     "--iterations", "1")
    assert done.returncode == 0, done.stderr
    meta = json.loads((folder / FILE).read_text())["meta"]
    assert meta["pieces"] == 8 and meta["preset"] == "chorale" and len(meta["rounds"]) == 2
    assert "round 1:" in done.stdout
    bad = run_riffd("calibrate", str(folder), "--data", str(chorales), "--preset", "chorale", "--tables", "rhythm")
    assert bad.returncode == 2 and "unknown table" in bad.stderr
    markov = run_riffd("calibrate", "markov", "--data", str(chorales), "--preset", "chorale")
    assert markov.returncode == 2 and "not a checkpoint" in markov.stderr
    # the help spells the tables' note counts (literals: the CLI starts without numpy)
    helped = " ".join(run_riffd("calibrate", "--help").stdout.split())
    assert f"line's last {CENTRE_NOTES} pitches" in helped and f"line's last {MEMORY_NOTES} notes" in helped


def test_the_fit_leaves_the_presets_chord_tone_bias_to_act_on_top(chorales, tmp_path):
    """A fit with the bias in place would undo it: the tables are the model's alone."""
    from riffd.models.evaluation.calibrate import calibrate_checkpoint
    folder = chorale_copy(tmp_path / "ckpt")
    fits = [calibrate_checkpoint(folder, chorales, load_preset("chorale").with_values(chord_tone_bias=bias),
                                 pieces=8, iterations=1, echo=lambda *a: None) for bias in (0.0, 0.9)]
    assert fits[0].chord_pc.any()
    assert np.array_equal(fits[0].chord_pc, fits[1].chord_pc) and np.array_equal(fits[0].interval, fits[1].interval)
