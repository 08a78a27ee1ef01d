"""A melody whose end is known lands on the final chord and holds to the end
(models/ending.py): in render, the evaluation and /riffd/generate's phrases."""
import mido
import pytest

from riffd.bridges.midifile import read_song
from riffd.bridges.midiwrite import melody_track
from riffd.daemon.render import render_file
from riffd.models import load_model
from riffd.models.ending import MIN_TAIL, land
from riffd.models.protocol import ChordAt, MelodyNote
from riffd.music.chords import parse_chord
from riffd.presets import load_preset

TRIADS = {"C": (48, 52, 55), "Am": (45, 48, 52), "F": (41, 45, 48), "G": (43, 47, 50)}
CHORDS = [ChordAt(0.0, parse_chord("C")), ChordAt(4.0, parse_chord("F")), ChordAt(8.0, parse_chord("G")),
          ChordAt(12.0, parse_chord("C"))]


def line(*notes):
    return [MelodyNote(s, d, p, 80 + k) for k, (s, d, p) in enumerate(notes)]


def test_the_last_note_of_the_last_bar_that_can_sound_a_beat_moves_to_the_root_and_holds():
    notes = line((10, 2, 71), (12, 1, 64), (13, 1, 65), (14, 1, 67), (15.5, 0.5, 69))
    out = land(notes, CHORDS, 16.0, (4, 4), (60, 84), "root")
    assert [(n.start, n.duration, n.pitch) for n in out] == [(10, 2, 71), (12, 1, 64), (13, 1, 65), (14, 2, 72)]
    assert out[-1].velocity == 83                               # the model's note's own
    chord = land(notes, CHORDS, 16.0, (4, 4), (60, 84), "chord")
    assert [(n.start, n.duration, n.pitch) for n in chord][-1] == (14, 2, 67)  # G is a tone of C: it stays
    assert land(line((10, 2, 71), (12, 1, 62)), CHORDS, 16.0, (4, 4), (60, 84), "chord")[-1].pitch == 60
    six_eight = land(line((12, 1.5, 64), (13.5, 1.5, 67), (14.5, 0.5, 65)), CHORDS, 15.0, (6, 8), (60, 84), "root")
    assert [(n.start, n.duration) for n in six_eight] == [(12, 1.5), (13.5, 1.5)]  # a dotted quarter at least


def test_ending_beats_holds_the_final_chord_as_a_chorale_does():
    chords = CHORDS[:3] + [ChordAt(13.0, parse_chord("C"))]
    notes = line((12, 1, 67), (13, 1, 64), (14, 1, 65), (15, 1, 67))
    held = land(notes, chords, 16.0, (4, 4), (60, 84), "root", beats=3)
    assert [(n.start, n.duration, n.pitch) for n in held] == [(12, 1, 67), (13, 3, 60)]
    assert land(notes, chords, 16.0, (4, 4), (60, 84), "root", beats=1)[-1].start == 15


def test_with_no_note_begun_in_the_last_bar_one_is_added_where_it_starts():
    out = land(line((9, 1, 74), (10, 5, 71)), CHORDS, 16.0, (4, 4), (60, 84), "root")
    assert [(n.start, n.duration, n.pitch) for n in out] == [(9, 1, 74), (10, 2, 71), (12, 4, 72)]


def test_a_long_final_chord_lands_in_its_last_bar_and_the_register_is_kept():
    chords = CHORDS[:3] + [ChordAt(12.0, parse_chord("F"))]
    notes = line((12, 2, 84), (14, 2, 81), (16, 1, 83), (17, 1, 84), (18, 1, 79), (19.5, 0.5, 81))
    out = land(notes, chords, 20.0, (4, 4), (60, 84), "root")
    assert [(n.start, n.duration, n.pitch) for n in out][-3:] == [(16, 1, 83), (17, 1, 84), (18, 2, 77)]
    assert land(line((16, 1, 60)), chords, 20.0, (4, 4), (60, 64), "root")[-1].pitch == 60  # no F in the register


def test_the_melody_ends_with_a_no_chord_and_a_click_is_left_out():
    chords = CHORDS + [ChordAt(14.0, None)]
    out = land(line((12, 1, 64), (13, 2, 67), (15, 1, 72)), chords, 16.0, (4, 4), (60, 84), "root")
    assert [(n.start, n.duration, n.pitch) for n in out] == [(12, 1, 64), (13, 1, 72)]
    model = land(line((12, 1, 64), (15.5, 1, 67), (15.9, 1, 72)), CHORDS, 16.0, (4, 4), (60, 84), "model")
    assert [(n.start, n.duration) for n in model] == [(12, 1), (15.5, 0.5)]  # the last began 0.1 beats from the end
    with pytest.raises(ValueError, match="unknown ending"):
        land([], CHORDS, 16.0, (4, 4), (60, 84), "tonic")


def _band(tmp_path, overhang_ticks=8, drums_bars=0):
    """C Am F G twice as block chords, a tune an octave up ending ``overhang_ticks`` after
    the chords (a player's late release), drums going on ``drums_bars`` after them."""
    names = ["C", "Am", "F", "G", "C", "Am", "F", "C"]
    keys = [MelodyNote(bar * 4, 4.0, p, 70) for bar, name in enumerate(names) for p in TRIADS[name]]
    tune = [MelodyNote(b, 1.0 + (overhang_ticks / 480 if b == 31 else 0), 72 + (b % 3) * 2, 90) for b in range(32)]
    hits = [MelodyNote(b, 0.1, 36, 100) for b in range(4 * (len(names) + drums_bars))]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks += [melody_track(keys, 480, 0, name="Keys"), melody_track(tune, 480, 1, name="Melody"),
                    melody_track(hits, 480, 9, name="Drums")]
    midi.save(tmp_path / "band.mid")
    return tmp_path / "band.mid"


@pytest.mark.parametrize("model", ["rules", "onnx"])
def test_render_lands_on_the_last_chords_root_and_plays_no_click(tmp_path, model):
    """The tune's last note-off 8 ticks after the chords', and a bar of drums after both:
    every seed's melody ends on C (the root of the last chord), held to the last pitched
    sound; no note begins in the last sixteenth, none goes on over the drums alone."""
    src = _band(tmp_path, drums_bars=1)
    end = 32 + 8 / 480
    for seed in range(4):
        report = render_file(src, tmp_path / "out.mid", load_preset("pop"), load_model(model), seed=seed)
        last = report.notes[-1]
        assert last.pitch % 12 == 0 and 28 <= last.start <= end - 1 and last.end == pytest.approx(end), report.notes[-3:]
        assert all(n.duration >= MIN_TAIL for n in report.notes)
        written = read_song(tmp_path / "out.mid").tracks[-1]
        assert max(n.end for n in written) == round(end * 480)
    plain = load_preset("pop").with_values(ending="model")
    for seed in range(4):  # the model's own ending: cut at the end, still no click
        report = render_file(src, tmp_path / "out.mid", plain, load_model(model), seed=seed)
        assert all(n.duration >= MIN_TAIL - 1e-9 and n.end <= end + 1e-9 for n in report.notes)


def test_a_phrase_asked_for_ends_on_its_last_chord():
    from riffd.daemon.phrases import PhraseJob, progression, render_phrase
    preset = load_preset("pop")
    for seed in range(3):
        job = PhraseJob(1, preset, "rules", progression(["Am", "F", "C", "E7"], 4, 4.0), 4, seed, None)
        notes = render_phrase(load_model("rules"), job)
        pitch, _, start, duration = notes[-1]
        assert pitch % 12 == 4 and 12 <= start <= 15 and start + duration == pytest.approx(16.0), notes[-3:]


def test_the_evaluation_plays_the_ending_render_plays():
    from riffd.models.evaluation.arrangements import Arrangement
    from riffd.models.evaluation.suite import play
    piece = Arrangement("p", [], CHORDS, (4, 4), 100.0, 16.0)
    for ending, roots in (("root", 3), ("model", None)):
        melodies = [play("rules", [piece], load_preset("pop").with_values(ending=ending), seed=s)[0]
                    for s in range(3)]
        if roots:
            assert all(m[-1].pitch % 12 == 0 and m[-1].end == pytest.approx(16.0) for m in melodies)
        assert all(n.end <= 16.0 + 1e-9 for m in melodies for n in m)
