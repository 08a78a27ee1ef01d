"""A file whose meter changes (models/meters.py): each meter's stretch in its own bars."""
import math

import mido
import pytest

from riffd.bridges.midifile import read_song
from riffd.daemon.render import render_song
from riffd.models import load_model
from riffd.models.evaluation.arrangements import Arrangement
from riffd.models.evaluation.suite import play as suite_play
from riffd.models.meters import bar_lines, main_meter, meter_spans, play
from riffd.models.protocol import ChordAt, MelodyModel, MelodyNote
from riffd.music.chords import parse_chord
from riffd.presets import load_preset

C, AM = parse_chord("C"), parse_chord("Am")


class Downbeats(MelodyModel):
    """A note on each of its bar lines, a bar long (a unit-test fake: where the model's bars are)."""
    name = "downbeats"

    def _next_notes(self):
        bar, start = self.preset.beats_per_bar, self.cursor
        self.cursor = (math.floor(start / bar + 1e-9) + 1) * bar
        on_bar = abs(start / bar - round(start / bar)) < 1e-9
        return [MelodyNote(start, bar, 72, 80)] if on_bar else []


def test_spans_and_the_files_meter():
    sigs = [(0.0, 4, 4), (16.0, 3, 4)]
    assert meter_spans(sigs, 40.0, (4, 4)) == [(0.0, 16.0, (4, 4)), (16.0, 40.0, (3, 4))]
    assert main_meter(sigs, 40.0, (4, 4)) == (3, 4)  # 24 beats of 3/4 against 16 of 4/4
    pickup = [(0.0, 1, 4), (1.0, 4, 4)]  # an anacrusis as a notation program writes it
    assert meter_spans(pickup, 33.0, (1, 4)) == [(0.0, 1.0, (1, 4)), (1.0, 33.0, (4, 4))]
    assert main_meter(pickup, 33.0, (1, 4)) == (4, 4)
    assert meter_spans([(0.0, 3, 4), (0.0, 4, 4)], 8.0, (3, 4)) == [(0.0, 8.0, (4, 4))]  # the later one rules
    # the piano roll's bar lines (a render's PNG): the file's, through the change
    assert bar_lines(sigs, 28.0, (4, 4)) == [0, 4, 8, 12, 16, 19, 22, 25, 28]
    assert bar_lines(pickup, 9.0, (1, 4)) == [0, 1, 5, 9]


def test_each_meter_is_played_in_its_own_bars():
    pop = load_preset("pop")
    chords = [ChordAt(0.0, C), ChordAt(16.0, AM)]
    notes, meter = play(Downbeats(), pop, chords, 0.0, 28.0, seed=1, time_signatures=[(0.0, 4, 4), (16.0, 3, 4)])
    assert [n.start for n in notes] == [0, 4, 8, 12, 16, 19, 22, 25] and meter == (3, 4)  # one start: 16, 20, 24
    notes, _ = play(Downbeats(), pop.with_values(meter=[4, 4]), chords, 0.0, 13.0, time_signatures=[(0.0, 1, 4), (1.0, 4, 4)])
    assert [n.start for n in notes] == [0, 1, 5, 9]  # the pickup's bar, then 4/4 from beat 1
    notes, _ = play(Downbeats(), pop, chords, 0.0, 16.0)  # one meter: as ever
    assert [n.start for n in notes] == [0, 4, 8, 12]


def test_a_meter_the_transformer_never_learned_keeps_the_one_before():
    chords = [ChordAt(0.0, C), ChordAt(8.0, AM)]
    notes, meter = play(load_model("onnx"), load_preset("pop"), chords, 0.0, 19.0, seed=2,
                        time_signatures=[(0.0, 4, 4), (8.0, 11, 8)])
    assert meter == (4, 4) and notes and notes[-1].start > 8.0


def test_the_transformer_plays_a_hymn_in_4_1(tmp_path):
    """A file in 4/1 is rendered by the transformer (as two bars of 4/2 a bar), to its end;
    before, it was refused for a meter outside the model's vocabulary."""
    song = read_song(write(tmp_path / "in.mid", [(0, 4, 1)], [("C", 16), ("F", 8), ("G", 8), ("C", 16)]))
    report = render_song(song, tmp_path / "out.mid", load_preset("chorale"), load_model("onnx"), seed=3)
    assert report.notes and max(n.end for n in report.notes) > 40.0


def write(path, sigs, chords, ppqn=480):
    mid = mido.MidiFile(ticks_per_beat=ppqn)
    meta = mido.MidiTrack()
    tick = 0
    for beat, num, den in sigs:
        meta.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=int(beat * ppqn) - tick))
        tick = int(beat * ppqn)
    keys = mido.MidiTrack()
    for name, beats in chords:
        pitches = parse_chord(name).voicing()
        keys += [mido.Message("note_on", note=p, velocity=70, time=0) for p in pitches]
        keys += [mido.Message("note_off", note=p, velocity=0, time=int(beats * ppqn) if k == 0 else 0)
                 for k, p in enumerate(pitches)]
    mid.tracks += [meta, keys]
    mid.save(path)
    return path


def test_render_and_eval_play_a_files_meter_changes(tmp_path):
    """Four bars of 4/4, then four of 3/4: riffd's bars are the file's (before, 16, 20, 24)."""
    song = read_song(write(tmp_path / "in.mid", [(0, 4, 4), (16, 3, 4)], [("C", 4), ("F", 4), ("G", 4), ("C", 4), ("Am", 12)]))
    report = render_song(song, tmp_path / "out.mid", load_preset("pop").with_values(ending="model"), Downbeats(), seed=1)
    assert [n.start for n in report.notes] == [0, 4, 8, 12, 16, 19, 22, 25]
    piece = Arrangement("p", [], [ChordAt(0.0, C), ChordAt(16.0, AM)], (3, 4), 120.0, 28.0,
                        time_signatures=[(0.0, 4, 4), (16.0, 3, 4)])
    [notes] = suite_play(Downbeats(), [piece], load_preset("pop").with_values(ending="model"))
    assert [n.start for n in notes] == [0, 4, 8, 12, 16, 19, 22, 25]


def test_a_pickup_bar_does_not_make_the_files_meter(tmp_path):
    """A one-beat pickup written as 1/4, then 4/4: the file is in 4/4 (before, the preset
    took 1/4, and the whole file was played a bar a beat)."""
    path = write(tmp_path / "in.mid", [(0, 1, 4), (1, 4, 4)], [("G", 1), ("C", 8), ("G", 8), ("C", 8)])
    report = render_song(read_song(path), tmp_path / "out.mid", load_preset("pop").with_values(ending="model"),
                         Downbeats(), seed=1)
    assert [n.start for n in report.notes] == [0, 1, 5, 9, 13, 17, 21]
