"""`riffd eval`: melody features, the two-sample judge, real arrangements read from a
folder, and the command end to end on chorales written as a user's files would be."""
from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from riffd.bridges.midifile import TrackNote
from riffd.models.evaluation.arrangements import (TOP_LINE, ArrangementError, beat_chords, beat_starts, strong_beats,
                                                  read_arrangement, read_folder, trimmed)
from riffd.models.evaluation.features import FEATURE_NAMES, features, kl, repetition, valid
from riffd.models.evaluation.judge import tells, told_apart
from riffd.models.evaluation.suite import verdicts
from riffd.models.protocol import ChordAt, MelodyNote
from riffd.music.chords import parse_chord

from riffd.models.training.songfiles import write_songs
from conftest import PROGRESSION, TRIADS, pedalled_arpeggios, piano_with_its_tune, run_riffd

PHRASE = [(0, 60), (1, 62), (2, 64), (3, 65), (4, 67), (5, 65), (6, 64), (7, 62)]  # 2 bars of 4/4


def phrase_at(start: float, shift: int) -> list[MelodyNote]:
    return [MelodyNote(start + b, 1.0, p + shift, 80) for b, p in PHRASE]


def test_repetition_sees_transposed_and_varied_repeats_but_not_new_phrases():
    repeated = phrase_at(0, 0) + phrase_at(8, 5) + phrase_at(16, 0)
    assert repetition(repeated, 4.0, 24.0) == 1.0
    varied = phrase_at(0, 0) + [n if k != 3 else MelodyNote(n.start, 1.0, 70, 80) for k, n in enumerate(phrase_at(8, 0))]
    assert repetition(varied, 4.0, 16.0) == 1.0  # 7 of 8 notes the same: Jaccard 7/9
    rng = np.random.default_rng(3)
    wandering = [MelodyNote(float(b), 1.0, int(rng.integers(55, 80)), 80) for b in range(32)]
    assert repetition(wandering, 4.0, 32.0) == 0.0


def test_features_of_a_known_melody():
    chords = [ChordAt(0.0, parse_chord("C")), ChordAt(4.0, parse_chord("G"))]
    notes = [MelodyNote(0, 1, 60, 80), MelodyNote(1, 1, 62, 80), MelodyNote(4, 0.5, 67, 80), MelodyNote(4.5, 0.5, 71, 80)]
    f = features(notes, chords, 4.0, 8.0)
    assert f.scalars["chord_tone_ratio"] == 0.75  # D over C is the one non-chord tone
    assert f.scalars["notes_per_bar"] == 2.0 and f.scalars["range"] == 11.0
    assert f.histograms["onset"][0] == 0.75 and f.histograms["onset"][6] == 0.25
    assert f.histograms["interval"][12 + 2] == 1 / 3 and f.histograms["interval"][12 + 5] == 1 / 3
    assert all(abs(h.sum() - 1) < 1e-9 for h in f.histograms.values())
    assert f.vector().shape == (6 + 12 + 25 + 12 + 9,)


def test_validity_and_kl():
    assert valid([MelodyNote(0, 1, 60, 80), MelodyNote(1, 1, 62, 80)])
    assert not valid([MelodyNote(0, 2, 60, 80), MelodyNote(1, 1, 62, 80)])  # two voices
    assert not valid([MelodyNote(0, 1, 130, 80)])
    p = np.array([0.5, 0.5, 0.0])
    assert kl(p, p) == pytest.approx(0.0, abs=1e-12)
    assert kl(p, np.array([0.0, 0.0, 1.0])) > 3.0


def test_tells_name_the_feature_that_differs():
    """The report's 'what tells it from real': the shifted column comes first, with its sign."""
    rng = np.random.default_rng(3)
    real, other = rng.normal(size=(80, len(FEATURE_NAMES))), rng.normal(size=(80, len(FEATURE_NAMES)))
    repeated = FEATURE_NAMES.index("interval 0 (repeated note)")
    other[:, repeated] -= 1.5
    first = tells(real, other, FEATURE_NAMES, k=3)[0]
    assert first["feature"] == "interval 0 (repeated note)" and first["d"] < -1.0
    # the names follow MelodyFeatures.vector(), entry for entry
    chords = [ChordAt(0.0, parse_chord("C"))]
    notes = [MelodyNote(0, 1, 60, 80), MelodyNote(1, 1, 60, 80), MelodyNote(2, 2, 64, 80), MelodyNote(4, 4.5, 67, 80)]
    vector = dict(zip(FEATURE_NAMES, features(notes, chords, 4.0, 12.0).vector(), strict=True))
    assert vector["notes_per_bar"] == pytest.approx(4 / 3) and vector["range"] == 7.0
    assert vector["interval 0 (repeated note)"] == pytest.approx(1 / 3) and vector["interval +4"] == pytest.approx(1 / 3)
    assert vector["onset 0/12 beat"] == 1.0 and vector["chord pc +4"] == 0.25
    assert vector["duration 1.51-2.01 beats"] == 0.25 and vector["duration over 4.01 beats"] == 0.25


def test_the_two_sample_target_is_judged_on_the_score_given():
    """--seeds: the target reads the mean over the seeds when it is given, not seed 0's."""
    real = {"chord_tone_ratio": 0.7, "pc_entropy": 2.5, "notes_per_bar": 4.0, "repetition_2bar": 0.2}
    row = {**real, "judge": 0.72, **{f"kl_{k}": 0.01 for k in ("chord_pc", "interval", "onset", "duration")}}
    assert verdicts(row, real)["judge"] is False and verdicts(row, real, 0.68)["judge"] is True
    assert verdicts({**row, "judge": 0.66}, real, 0.71)["judge"] is False
    assert verdicts({**row, "judge": None}, real)["judge"] is None
    assert all(v for k, v in verdicts(row, real, 0.68).items())


def test_judge_is_near_chance_on_one_distribution_and_sure_on_two():
    rng = np.random.default_rng(0)
    same = told_apart(rng.normal(size=(60, 8)), rng.normal(size=(60, 8)))
    apart = told_apart(rng.normal(size=(60, 8)), rng.normal(1.5, size=(60, 8)))
    assert 0.3 <= same <= 0.7 and apart >= 0.9
    with pytest.raises(ValueError, match="at least 5"):
        told_apart(np.zeros((3, 2)), np.ones((3, 2)))


@pytest.fixture(scope="module")
def arrangements(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arrangements")
    written = write_songs(folder / "songs", 12)
    (folder / "songs" / "noise.mid").write_bytes(np.random.default_rng(1).bytes(2000))
    chords_only = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack([mido.Message("note_on", note=p, velocity=60, time=0) for p in (48, 52, 55)]
                           + [mido.Message("note_off", note=p, velocity=0, time=480 if k == 0 else 0)
                              for k, p in enumerate((48, 52, 55))])
    chords_only.tracks.append(track)
    chords_only.save(folder / "songs" / "chords only.mid")
    return folder / "songs", written


def as_type_0(path, out):
    """``path`` with its tracks merged into one track (MIDI type 0), each track's notes on
    its own channel, as DAWs and web files often have them."""
    midi = mido.MidiFile(path)
    events = []
    for channel, track in enumerate(midi.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type not in ("end_of_track", "track_name"):
                events.append((tick, msg.copy(channel=channel) if msg.type.startswith("note") else msg))
    merged, now = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        merged.append(msg.copy(time=tick - now))
        now = tick
    single = mido.MidiFile(type=0, ticks_per_beat=midi.ticks_per_beat)
    single.tracks.append(merged)
    single.save(out)


def test_a_type_0_file_is_read_part_by_part_as_its_type_1_original(arrangements, tmp_path):
    """A type-0 file holds every part in one track, a channel each: its parts are read
    as the type-1 originals' tracks are (one with a track named MELODY, one unnamed)."""
    _, written = arrangements
    for path in written[:2]:
        as_type_0(path, tmp_path / path.name)
        single, original = read_arrangement(tmp_path / path.name), read_arrangement(path)
        assert single.melody == original.melody and single.melody
        assert single.chords == original.chords and single.chords
        assert single.found["melody_part"].startswith("channel ")


def as_played(path, out, sigma, seed=0):
    """``path`` as people would play it: every note's start and end moved by a normal
    error of ``sigma`` ticks (15 at 480 PPQN: 16 ms at 120 BPM), a key let go before it
    is struck again, as a keyboard can only play it."""
    rng = np.random.default_rng(seed)
    midi = mido.MidiFile(path)
    for track in midi.tracks:
        tick, others, notes, sounding = 0, [], [], {}
        for msg in track:
            tick += msg.time
            key = (getattr(msg, "channel", None), getattr(msg, "note", None))
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault(key, []).append(len(notes))
                notes.append([tick, None, msg])
            elif msg.type in ("note_on", "note_off") and sounding.get(key):
                notes[sounding[key].pop(0)][1] = tick  # first in, first out: a legato repeat's overlap
            else:
                others.append((tick, msg))
        notes = [[max(0, on + int(rng.normal(0, sigma))), off + int(rng.normal(0, sigma)), msg]
                 for on, off, msg in notes if off is not None]
        notes.sort(key=lambda n: n[0])
        last: dict = {}
        for n in notes:  # each key let go before it is struck again
            key = (n[2].channel, n[2].note)
            if key in last:
                last[key][1] = min(last[key][1], n[0])
            last[key] = n
        events = others + [e for on, off, msg in notes if off > on
                           for e in ((on, msg), (off, mido.Message("note_off", channel=msg.channel, note=msg.note)))]
        now = 0
        track[:] = []
        events = [(max(t for t, _ in events) if m.type == "end_of_track" else t, m) for t, m in events]
        for tick, msg in sorted(events, key=lambda e: (e[0], e[1].type == "end_of_track", e[1].type != "note_off")):
            track.append(msg.copy(time=tick - now))
            now = tick
    midi.save(out)
    return out


def test_a_played_arrangement_is_measured_as_the_rhythm_it_plays(arrangements, tmp_path):
    """Chorales played with 16 ms of error (melody and chords): the melody read is the
    written one, snapped to sixteenths, and so are its chord tones. Measured as played,
    a note struck just before a chord change counted on the chord before: 60 of Aird's
    airs fell from 0.77 chord tones to 0.70 (docs/measured.md, "Played files")."""
    _, written = arrangements
    for seed, path in enumerate(written[:4]):
        human, notated = read_arrangement(as_played(path, tmp_path / path.name, 15, seed)), read_arrangement(path)
        assert notated.found["melody_snapped_to"] is None and human.found["melody_snapped_to"] == "sixteenths"
        assert [(n.start, n.pitch) for n in human.melody] == [(n.start, n.pitch) for n in notated.melody]
        ratio = [features(p.melody, p.chords, p.bar_beats, p.length).scalars["chord_tone_ratio"]
                 for p in (human, notated)]
        assert abs(ratio[0] - ratio[1]) < 0.05


def test_a_late_release_is_legato_and_an_inner_voice_is_not():
    """480 PPQN, a tolerance of 1/8 beat: a quarter let go 70 ticks after the next, lower
    note is struck is cut there (before, that next note was dropped as an inner voice);
    a quarter under a held half note is still an inner voice."""
    legato = [TrackNote(0, 550, 72, 80, 0), TrackNote(480, 960, 69, 80, 0), TrackNote(960, 1440, 67, 80, 0)]
    line, chordal = trimmed(legato, 60)
    assert [(n.start, n.end, n.pitch) for n in line] == [(0, 480, 72), (480, 960, 69), (960, 1440, 67)] and chordal == 0
    inner = [TrackNote(0, 960, 72, 80, 0), TrackNote(480, 960, 64, 80, 0), TrackNote(960, 1440, 71, 80, 0)]
    line, chordal = trimmed(inner, 60)
    assert [n.pitch for n in line] == [72, 71] and chordal == 1


def test_a_played_notes_few_ticks_over_the_beat_line_do_not_make_a_beat_a_chord():
    """A broken C/E chord in eighths, E G | C E, its C struck 12 ticks early: the first
    beat sounds two pitch classes and is named with the next (C/E). Before, the C's 12
    ticks counted as a third pitch class there and the beat was named from E and G
    alone: Em."""
    notes = [TrackNote(0, 240, 52, 70, 0), TrackNote(240, 468, 55, 70, 0), TrackNote(468, 720, 60, 70, 0),
             TrackNote(720, 960, 64, 70, 0)]
    chords = beat_chords([notes], 480, [0, 480], 960)
    assert chords[0] == ChordAt(0.0, parse_chord("C/E"))


def test_read_folder_finds_named_and_unnamed_melodies_and_skips_what_it_cannot_use(arrangements):
    from riffd.models.training.corpus import chorale, chorale_paths
    folder, written = arrangements
    pieces, files = read_folder(folder, echo=lambda line: None)
    assert len(pieces) == 12
    by_file = {f["file"]: f for f in files}
    assert "not a readable MIDI file" in by_file["noise.mid"]["skipped"]
    assert "no melody track" in by_file["chords only.mid"]["skipped"]
    assert by_file[written[0].name]["melody_found_as"] == "named 'MELODY'"
    assert by_file[written[1].name]["melody_found_as"] == "the highest one-voice track"
    stems = {p.stem: p for p in chorale_paths()}
    for piece in pieces[:4]:
        original = chorale(stems[piece.name.split(" ", 1)[1]])
        # the legato overlaps are trimmed away: the line is the chorale's melody again
        # (but for the last note, which overlaps nothing)
        assert [n.pitch for n in piece.melody] == [n.pitch for n in original.melody]
        assert [round(n.duration, 3) for n in piece.melody[:-1]] == [round(n.duration, 3) for n in original.melody[:-1]]
        assert len(piece.chords) >= 8


def test_a_piano_part_with_its_tune_on_top_gives_the_tune_and_the_left_hands_chords(tmp_path):
    """No part plays one voice: the top line of a part that plays a tune over its own
    chords (both hands in one track) is the melody, and the rest of it names the chords.
    Block chords alone, a strum, or an oom-pah (the bass alone, under the chords) are no
    tune."""
    from riffd.bridges.midiwrite import melody_track
    triads, progression = TRIADS, PROGRESSION
    left, right, tune = piano_with_its_tune()
    oompah = [MelodyNote(bar * 4 + beat, 0.9, p, 70) for bar, name in enumerate(progression) for beat in range(4)
              for p in ((triads[name][0] - 12,) if beat % 2 == 0 else triads[name])]
    strum = [MelodyNote(bar * 4 + beat + i * 0.03, 0.8, p, 70) for bar, name in enumerate(progression)
             for beat in range(4) for i, p in enumerate(triads[name] + (triads[name][0] + 12,))]
    files = {"piano": left + right, "chords": left, "oompah": oompah, "strum": strum}
    for name, notes in files.items():
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks.append(melody_track(notes, 480, 0, name="Piano"))
        midi.save(tmp_path / f"{name}.mid")
    piano = read_arrangement(tmp_path / "piano.mid")
    assert piano.found["melody_found_as"] == "the top line of a part that plays a tune over its chords"
    assert [n.pitch for n in piano.melody] == tune
    assert [c.chord.name for c in piano.chords] == progression
    for name in ("chords", "oompah", "strum"):
        with pytest.raises(ArrangementError, match="no melody track"):
            read_arrangement(tmp_path / f"{name}.mid")


def test_grace_notes_as_music21_writes_them_give_way_to_the_notes_they_ornament(tmp_path):
    """music21's MIDI writer gives a grace note zero length and sorts its note-off before
    its note-on: each is read as a zero-length note, the note of its pitch struck next is
    kept (symusic pairs the grace note with that note's note-off and drops it), and the
    melody is the notes the grace notes ornament, one voice, over the right chords."""
    import warnings

    from music21 import chord, note, stream

    from riffd.bridges.midifile import read_song
    main = [72, 74, 76, 77, 79, 77, 76, 74] * 2
    tune, strings = stream.Part(), stream.Part()
    for k, pitch in enumerate(main):
        if k % 2 == 0:
            tune.append(note.Note(pitch + 2).getGrace())  # from above: the next main note's pitch
        tune.append(note.Note(pitch, quarterLength=1))
    for root in (48, 53, 55, 48):
        strings.append(chord.Chord([root, root + 4, root + 7], quarterLength=4))
    score = stream.Score([tune, strings])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score.write("midi", fp=str(tmp_path / "graces.mid"))
    song = read_song(tmp_path / "graces.mid")
    line = max(song.tracks, key=len)
    graces = [n for n in line if n.end == n.start]
    assert len(graces) == len(main) // 2
    assert sorted(n.pitch for n in line if n.end > n.start) == sorted(main)
    piece = read_arrangement(tmp_path / "graces.mid")
    assert piece.found["melody_found_as"] == "the highest one-voice track"
    assert piece.found["chordal_notes_dropped"] == 0
    assert [n.pitch for n in piece.melody] == main
    assert [round(n.duration, 3) for n in piece.melody] == [1.0] * len(main)
    assert [c.chord.name for c in piece.chords] == ["C", "F", "G", "C"]


def test_a_bass_line_is_no_melody(tmp_path):
    """A band's file with no tune (drums, keys, a bass in one voice an octave under the
    chords) has no melody to learn or to be measured against; with an unnamed tune
    added, the tune is the melody."""
    from riffd.bridges.midiwrite import melody_track
    left, right, tune = piano_with_its_tune()
    bass = [MelodyNote(bar * 4 + beat, 0.9, TRIADS[name][0] - 12, 90)
            for bar, name in enumerate(PROGRESSION) for beat in range(4)]
    drums = [MelodyNote(k / 2, 0.1, p, 100) for k in range(64) for p in (42, 36)]
    band = mido.MidiFile(type=1, ticks_per_beat=480)
    band.tracks += [melody_track(drums, 480, 9, name=""), melody_track(left, 480, 0, name=""),
                    melody_track(bass, 480, 1, name="")]
    band.save(tmp_path / "band.mid")
    with pytest.raises(ArrangementError, match="no melody track"):
        read_arrangement(tmp_path / "band.mid")
    band.tracks.append(melody_track(right, 480, 2, name=""))
    band.save(tmp_path / "with tune.mid")
    found = read_arrangement(tmp_path / "with tune.mid")
    assert found.found["melody_track"] == 3 and [n.pitch for n in found.melody] == tune


def test_beats_follow_the_meter():
    ppqn = 480
    assert beat_starts([(0, 4, 2)], ppqn, 4 * 960) == [0, 960, 1920, 2880]  # half notes
    assert beat_starts([(0, 6, 8)], ppqn, 2 * 1440) == [0, 720, 1440, 2160]  # dotted quarters
    assert beat_starts([(0, 3, 8)], ppqn, 1440) == [0, 480, 960]  # never shorter than a quarter
    assert beat_starts([], ppqn, 1440) == [0, 480, 960]  # no meter: 4/4
    # a change of meter counts its beats from where it starts
    assert beat_starts([(0, 2, 2), (1920, 6, 8)], ppqn, 1920 + 1440) == [0, 960, 1920, 2640]
    # where chords mostly change: each bar's first beat, and the middle of an even bar of four or more
    assert strong_beats([], ppqn, 2 * 1920) == {0, 960, 1920, 2880}  # 4/4: beats 1 and 3
    assert strong_beats([(0, 3, 4)], ppqn, 2 * 1440) == {0, 1440}
    assert strong_beats([(0, 6, 8)], ppqn, 2 * 1440) == {0, 1440}  # two dotted quarters: the bar line
    assert strong_beats([(0, 12, 8)], ppqn, 2880) == {0, 1440}
    assert strong_beats([(0, 4, 2)], ppqn, 3840) == {0, 1920}
    assert strong_beats([(0, 2, 2), (1920, 3, 4)], ppqn, 1920 + 1440) == {0, 1920}


def test_a_chord_broken_from_its_root_changes_on_its_bar_line():
    """F, then C7 as ``dataset songs`` breaks a lead sheet's chords (C C | E G | Bb C |
    ..., eighths): the bar line's beat holds only C, a tone of F, and is still C's first
    beat. Were every beat weak, F would go on through it (render's rule before, which named
    C7 a beat late)."""
    from riffd.models.training.songfiles import broken
    notes = [TrackNote(round(n.start * 480), round((n.start + n.duration) * 480), n.pitch, 64, 0)
             for n in broken([(0.0, 4.0, (53, 65, 69, 72)), (4.0, 8.0, (48, 60, 64, 67, 70))])]
    starts = beat_starts([], 480, 3840)
    chords = beat_chords([notes], 480, starts, 3840, strong_beats([], 480, 3840))
    assert [(c.beat, c.chord.name) for c in chords] == [(0.0, "F"), (4.0, "C"), (6.0, "C7")]
    late = beat_chords([notes], 480, starts, 3840)  # every beat weak
    assert [(c.beat, c.chord.name) for c in late][:2] == [(0.0, "F"), (5.0, "C7")]


def test_chords_are_named_per_beat_of_a_compound_meter(tmp_path):
    """In 6/8 each dotted-quarter beat arpeggiates its chord: a chord per quarter would name
    windows that straddle two beats."""
    ppqn, eighth = 480, 240
    melody, accompaniment = mido.MidiTrack(), mido.MidiTrack()
    melody.append(mido.MetaMessage("time_signature", numerator=6, denominator=8, time=0))
    melody.append(mido.MetaMessage("track_name", name="MELODY", time=0))
    accompaniment.append(mido.MetaMessage("track_name", name="PIANO", time=0))
    arpeggios = [(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)] * 2  # C F G C, a beat each
    for beat, chord in enumerate(arpeggios):
        for pitch in chord:
            accompaniment.append(mido.Message("note_on", note=pitch, velocity=70, time=0))
            accompaniment.append(mido.Message("note_off", note=pitch, velocity=0, time=eighth))
        melody.append(mido.Message("note_on", note=72 + chord[0] % 12, velocity=80, time=0))
        melody.append(mido.Message("note_off", note=72 + chord[0] % 12, velocity=0, time=3 * eighth))
    song = mido.MidiFile(ticks_per_beat=ppqn)
    song.tracks += [melody, accompaniment]
    song.save(tmp_path / "jig.mid")
    piece = read_arrangement(tmp_path / "jig.mid")
    # the second C (beat 6) continues the first: equal neighbours are one change
    assert [(c.beat, c.chord.name) for c in piece.chords] == [(0.0, "C"), (1.5, "F"), (3.0, "G"), (4.5, "C"),
                                                              (7.5, "F"), (9.0, "G"), (10.5, "C")]


def test_eval_command_on_a_folder(arrangements, tmp_path):
    folder, _ = arrangements
    out = tmp_path / "report"
    result = run_riffd("eval", str(folder), "--models", "rules,markov", "-o", str(out), "--json", "--seeds", "3")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["configs"]) == {"real", "rules", "markov"} and report["pieces"] == 12
    assert [(t["a"], t["b"]) for t in report["tests"]] == [("rules", "markov")]
    assert 0 <= report["tests"][0]["p"] <= 1
    low, high = report["judge"]["real_vs_real"]
    assert 0 <= low <= high <= 1 and 0 <= report["judge"]["rules"] <= 1
    for name in ("rules", "markov"):
        row = report["configs"][name]
        assert len(row["distances"]) == 12 and row["composite"] == pytest.approx(np.mean(row["distances"]), abs=1e-3)
        assert set(row["targets"]) == {"judge", "chord_tone_ratio", "pc_entropy", "notes_per_bar", "repetition_2bar", "kl"}
        assert len(row["tells"]) == 5 and all(t["feature"] in FEATURE_NAMES for t in row["tells"])
    assert report["configs"]["real"]["valid"] == 1.0
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json", "histograms.png", "pieces.png"}
    assert "| rules |" in (out / "report.md").read_text()
    assert f"- rules: {report['configs']['rules']['tells'][0]['feature']} " in (out / "report.md").read_text()
    assert "noise.mid: skipped" in result.stdout
    # --seeds 3: the two-sample test again with seeds 1 and 2; seed 0's is the table's
    for name in ("rules", "markov"):
        row = report["judge_seeds"][name]
        assert row["seeds"] == [0, 1, 2] and row["told_from_real"][0] == report["judge"][name]
        assert all(0 <= x <= 1 for x in row["told_from_real"])
        assert row["mean"] == pytest.approx(np.mean(row["told_from_real"]), abs=1e-3)
        assert f"Told from real, {name}, seeds 0-2:" in (out / "report.md").read_text()
        assert report["configs"][name]["targets"]["judge"] == (row["mean"] <= 0.70)  # the mean, not seed 0's
    assert "(told from real: the mean over the seeds)" in (out / "report.md").read_text()


def test_eval_continues_each_melody_from_the_bars_given(arrangements, tmp_path):
    """--given-bars 2 --bars 2 --as-call: each real melody's first two bars are given (as a
    live call), the models go on from them over bars 3-4 and are compared there; the
    models hear the given bars (a tune over C G Am F, played twice: at ``repeat`` 1 bars
    1-2 come back over bars 5-6, by the form as render --continue would, or as an answer
    takes up a call); --bars or --as-call alone, or without a folder, is refused."""
    from riffd.models.evaluation.arrangements import Arrangement
    from riffd.models.evaluation.suite import continuations, play
    from riffd.presets import load_preset
    folder, _ = arrangements
    out = tmp_path / "report"
    result = run_riffd("eval", str(folder), "--models", "rules", "-o", str(out), "--json", "--given-bars", "2",
                       "--bars", "2", "--as-call")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["pieces"] >= 10 and "answered after 2 bars given" in (out / "report.md").read_text()
    assert report["continuation"] == {"given_bars": 2, "bars": 2, "as_call": True}
    assert run_riffd("eval", str(folder), "--bars", "2", "-o", str(tmp_path / "b")).returncode == 2
    assert run_riffd("eval", str(folder), "--as-call", "-o", str(tmp_path / "b")).returncode == 2
    assert run_riffd("eval", "--given-bars", "2", "-o", str(tmp_path / "c")).returncode == 2
    tune = [MelodyNote(b + 16.0 * k, 1.0, p, 90) for k in range(2)
            for b, p in [(0, 76), (1, 74), (2, 72), (4, 71), (5, 74), (6, 79), (8, 76), (9, 72), (12, 77), (13, 76)]]
    chords = [ChordAt(4.0 * k, parse_chord("C G Am F".split()[k % 4])) for k in range(8)]
    piece = Arrangement("twice", tune, chords, (4, 4), 120.0, 32.0)
    for as_call in (False, True):
        (window,) = continuations([piece], 4, 4, as_call, echo=lambda *a: None)
        assert (window.origin, window.length, len(window.given), len(window.melody)) == (16.0, 32.0, 10, 10)
        (played,) = play("rules", [window], load_preset("folk").with_values(repeat=1.0))
        again = [(n.start, n.pitch) for n in tune[10:] if n.start < 22.0]  # bars 5-6 as bars 1-2 went
        assert [(n.start, n.pitch) for n in played if n.start < 22.0] == again, (as_call, played)


def copied(paths, folder):
    """``folder``, made and holding copies of ``paths``."""
    folder.mkdir(parents=True)
    for path in paths:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_eval_command_on_a_small_folder_measures_all_but_the_two_sample_test(arrangements, tmp_path):
    """3 pieces: every figure but told-from-real (whose calibration needs two halves of 5);
    a folder with no usable piece, or an unknown model, is refused before any work."""
    folder, written = arrangements
    few = copied(written[:3], tmp_path / "few")
    out = tmp_path / "out"
    result = run_riffd("eval", str(few), "--models", "rules,markov", "-o", str(out), "--json", "--seeds", "3",
                       "--humans", str(folder))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["pieces"] == 3 and report["judge"]["real_vs_real"] is None and report["judge_seeds"] == {}
    assert report["humans"] == {} and "no human reference either: the two-sample test needs" in result.stdout
    assert "needs at least 10 pieces (3 here)" in report["judge"]["skipped"]
    for name in ("rules", "markov"):
        row = report["configs"][name]
        assert row["judge"] is None and row["targets"]["judge"] is None and len(row["distances"]) == 3
        assert isinstance(row["targets"]["chord_tone_ratio"], bool) and len(row["tells"]) == 5
    assert report["tests"][0]["pieces"] == 3 and 0 <= report["tests"][0]["p"] <= 1
    md = (out / "report.md").read_text()
    assert "Told from real: not tested (the two-sample test needs at least 10 pieces (3 here))" in md
    assert "| rules | - |" in md
    noise = tmp_path / "noise"
    noise.mkdir()
    (noise / "noise.mid").write_bytes(np.random.default_rng(1).bytes(900))
    refused = run_riffd("eval", str(noise), "--models", "rules", "-o", str(tmp_path / "out1"))
    assert refused.returncode == 2
    assert "at least 1 piece" in refused.stderr and "Traceback" not in refused.stderr
    unknown = run_riffd("eval", str(folder), "--models", "rules,nosuch", "-o", str(tmp_path / "out2"))
    assert unknown.returncode == 2 and "unknown model nosuch" in unknown.stderr
    assert not (tmp_path / "out2").exists()  # refused before any work
    (tmp_path / "a file").write_text("")
    blocked = run_riffd("eval", str(few), "--models", "rules", "-o", str(tmp_path / "a file" / "report"))
    assert blocked.returncode == 2 and "a file is a file, where the path needs a folder" in blocked.stderr and "Traceback" not in blocked.stderr


def in_meter(path, out, num, den):
    """``path`` written to ``out`` with every time signature set to ``num``/``den``."""
    midi = mido.MidiFile(path)
    for track in midi.tracks:
        track[:] = [m.copy(numerator=num, denominator=den) if m.type == "time_signature" else m for m in track]
    midi.tracks[0].insert(0, mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    midi.save(out)
    return out


def test_a_file_in_a_meter_a_model_cannot_play_is_skipped_not_the_run(arrangements, tmp_path):
    """A folder with one file in 5/2 (outside the transformer's vocabulary) and one in 4/32
    (a beat under a sixteenth): both are reported and left out for every model, and the
    rest is evaluated. Before, the first ended the whole run. A file in 4/1 is played."""
    _, written = arrangements
    folder = copied(written[:10], tmp_path / "songs")
    in_meter(written[10], folder / "five two.mid", 5, 2)
    in_meter(written[11], folder / "four thirty-two.mid", 4, 32)
    in_meter(written[0], folder / "four one.mid", 4, 1)
    out = tmp_path / "out"
    result = run_riffd("eval", str(folder), "--models", "rules,onnx", "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["pieces"] == 11 and set(report["configs"]) == {"real", "rules", "onnx"}
    assert all(len(report["configs"][m]["distances"]) == 11 for m in ("rules", "onnx"))
    skipped = {f["file"]: f["skipped"] for f in report["files"] if "skipped" in f}
    assert set(skipped) == {"five two.mid", "four thirty-two.mid"}
    assert "onnx: meter 5/2 is not in the model's vocabulary" in skipped["five two.mid"]
    assert "is not a time signature" in skipped["four thirty-two.mid"]
    assert "five two.mid: skipped: onnx: meter 5/2" in result.stdout
    assert "- five two.mid: skipped: onnx: meter 5/2" in (out / "report.md").read_text()


def test_eval_plays_the_presets_own_model_unless_told_otherwise(arrangements, tmp_path):
    """A preset naming a model (riff-fiddle, or the checkpoint a fine-tune writes) is played
    by that model when --models is left out; --models without it says so."""
    _, written = arrangements
    few = copied(written[:3], tmp_path / "few")
    preset = tmp_path / "mine.toml"
    preset.write_text('name = "mine"\nmodel = "riff-fiddle"\n')
    own = run_riffd("eval", str(few), "--preset", str(preset), "-o", str(tmp_path / "a"), "--json")
    assert own.returncode == 0, own.stderr
    assert set(json.loads(own.stdout.strip().splitlines()[-1])["configs"]) == {"real", "rules", "markov", "riff-fiddle"}
    assert "note:" not in own.stdout
    other = run_riffd("eval", str(few), "--preset", str(preset), "--models", "rules", "-o", str(tmp_path / "b"), "--json")
    assert other.returncode == 0, other.stderr
    assert set(json.loads(other.stdout.strip().splitlines()[-1])["configs"]) == {"real", "rules"}
    assert "note: the preset's model is riff-fiddle; --models plays rules with its values" in other.stdout


def test_dataset_build_takes_real_arrangements(arrangements, tmp_path):
    """Legato melodies over played accompaniment, named or not: every file with a melody
    and chords becomes a piece (the old reader refused such files for melody polyphony)."""
    folder, _ = arrangements
    out = tmp_path / "data"
    result = run_riffd("dataset", "build", "-o", str(out), "--sources", "none", "--midi", str(folder),
                       "--keys", "none", "--min-range", "5")
    assert result.returncode == 0, result.stderr
    built = json.loads((out / "build.json").read_text())
    assert built["rejected"] == {"unparsable": 1, "no melody track": 1}  # the noise, the chords-only file
    pieces = [json.loads(line) for line in (out / "pieces.jsonl").read_text().splitlines()]
    assert len(pieces) == 12


def test_dataset_songs_writes_piano_scores_and_lead_sheets_and_names_what_it_leaves_out(tmp_path):
    """`dataset songs --source` of a music21 corpus folder writes works of two parts
    (Joplin's Maple Leaf Rag: the piano's two staves, two tracks; riffd eval takes the
    right hand's tune over its chords) and lead sheets (one part with chord symbols:
    its tune over its symbols' chords, as the tune collections are written), and names
    on stderr each work it leaves out (Monteverdi's Roman-numeral analyses: one part, no
    melody). Before, every work of fewer than three parts was left out unsaid:
    `--source joplin` wrote "0 MIDI files". The lead sheets' chords are read back beat by
    beat as their symbols say."""
    rag = run_riffd("dataset", "songs", "-o", str(tmp_path / "rag"), "--source", "joplin")
    assert rag.returncode == 0 and "1 MIDI files" in rag.stdout, rag.stdout + rag.stderr
    piece = read_arrangement(next((tmp_path / "rag").iterdir()))
    assert piece.found["melody_found_as"] == TOP_LINE and len(piece.melody) > 500 and len(piece.chords) > 100
    sheets = run_riffd("dataset", "songs", "-o", str(tmp_path / "sheets"), "--source", "leadSheet")
    assert sheets.returncode == 0 and "2 MIDI files" in sheets.stdout, sheets.stdout + sheets.stderr
    from music21 import corpus as m21
    from riffd.models.training.corpus import chord_symbol_tunes
    for path, score in zip(sorted((tmp_path / "sheets").iterdir()), sorted(m21.getComposer("leadSheet"))):
        tune, piece = chord_symbol_tunes(score)[0], read_arrangement(path)
        assert [n.pitch for n in piece.melody] == [n.pitch for n in tune.melody]
        def bass_at(beat):  # of the chord named there; a symbol's chord is written bass first
            return next(c.chord.bass for c in reversed(piece.chords) if c.beat <= beat)
        # every beat under a symbol reads its bass: the beat before a change too (before, the
        # arpeggio's last beat named with the next bar's bass: Am/C before C7, Fmaj7 before F)
        assert all(bass_at(beat) == ps[0] % 12
                   for start, end, ps in tune.chords for beat in range(int(start), int(end)))
    madrigals = run_riffd("dataset", "songs", "-o", str(tmp_path / "m"), "--source", "monteverdi", "--count", "2")
    assert madrigals.returncode == 0, madrigals.stderr
    assert "madrigal.3.1.rntxt: left out: one part, no chord symbols under a melody" in madrigals.stderr
    assert "2 MIDI files (1 left out)" in madrigals.stdout


def test_a_human_reference_is_told_apart_as_a_model_is(arrangements, tmp_path):
    """--humans: another folder's real melodies go through the two-sample test against the
    folder's: its own copy is near chance, Aird's airs (written by `dataset songs --source
    airds`, tunes riffd never trained on; `--skip` writes later ones as the same files) are
    told from the chorales almost always."""
    folder, written = arrangements
    chorales, airs = copied(written[:12], tmp_path / "chorales"), tmp_path / "airs"
    made = run_riffd("dataset", "songs", "-o", str(airs), "--source", "airds", "--count", "12")
    assert made.returncode == 0, made.stderr
    assert f"{airs}: 12 MIDI files" in made.stdout
    # --skip: the same files as the run without it wrote at those numbers, so folders do not overlap
    rest = run_riffd("dataset", "songs", "-o", str(tmp_path / "rest"), "--source", "airds", "--skip", "9",
                     "--count", "3")
    assert rest.returncode == 0, rest.stderr
    later = sorted((tmp_path / "rest").iterdir())
    assert [p.name for p in later] == sorted(p.name for p in airs.iterdir())[9:]
    assert all(p.read_bytes() == (airs / p.name).read_bytes() for p in later)
    tunes, files = read_folder(airs, echo=lambda line: None)
    assert len(tunes) == 12 and all(len(t.chords) >= 4 and len(t.melody) >= 16 for t in tunes)
    assert files[0]["melody_found_as"] == "named 'MELODY'"
    out = tmp_path / "report"
    result = run_riffd("eval", str(folder), "--models", "rules,markov", "-o", str(out), "--json", "--seeds", "2",
                       "--humans", str(chorales), "--humans", str(airs))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    same, other = report["humans"]["humans: chorales"], report["humans"]["humans: airs"]
    for row in (same, other):
        assert row["seeds"] == [0, 1] and len(row["told_from_real"]) == 2 and row["pieces"] == 12
        assert row["mean"] == pytest.approx(np.mean(row["told_from_real"]), abs=1e-3)
        assert len(row["tells"]) == 5 and "composite" not in row
    assert max(same["told_from_real"]) <= 0.7 and min(other["told_from_real"]) >= 0.8
    assert same["kl_interval"] == pytest.approx(0.0, abs=1e-6) and other["kl_duration"] > 0.05
    # not paired with the folder's pieces: no Wilcoxon test takes them
    assert [(t["a"], t["b"]) for t in report["tests"]] == [("rules", "markov")]
    assert set(report["histograms"]) == {"real", "rules", "markov", "humans: chorales", "humans: airs"}
    md = (out / "report.md").read_text()
    assert "| humans: airs |" in md and "humans: airs (the real melodies of another folder, as a human reference)" in md
    noise = tmp_path / "noise"
    noise.mkdir()
    (noise / "noise.mid").write_bytes(np.random.default_rng(2).bytes(900))
    refused = run_riffd("eval", str(folder), "--models", "rules", "-o", str(tmp_path / "out1"), "--humans", str(noise))
    assert refused.returncode == 2 and "no MIDI file with a melody and chords for a human reference" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_two_reference_folders_of_one_name_keep_their_own_rows(arrangements, tmp_path):
    from riffd.models.evaluation.humans import read_references
    _, written = arrangements
    copied(written[:2], tmp_path / "a" / "songs")
    copied(written[2:5], tmp_path / "b" / "songs")
    found = read_references([tmp_path / "a" / "songs", tmp_path / "b" / "songs"], echo=lambda line: None)
    assert [len(v) for v in found.values()] == [2, 3]
    assert list(found) == ["humans: songs", f"humans: {tmp_path / 'b' / 'songs'}"]


def test_a_pianists_broken_chords_are_named_as_the_pedal_holds_them(tmp_path):
    """A PIANO part of broken chords, one key at a time under the sustain pedal (a bar
    each), beside its MELODY: each bar's chord, once, on its bar line. Read key by key,
    each bar's last beat was named with the next bar's (A7, Fmaj7, Gsus2 ...): 16 changes."""
    pedalled_arpeggios(tmp_path / "piano.mid")
    found = read_arrangement(tmp_path / "piano.mid")
    assert found.found["melody_part"] == "MELODY"
    assert [(c.beat, c.chord.name) for c in found.chords] == [(4.0 * bar, name) for bar, name in enumerate(PROGRESSION)]


def test_a_broken_chords_last_beat_is_its_own_bars_chord_in_eval(tmp_path):
    """A MELODY over a left hand in eighths, bass, fifth, tenth, fifth (two pitch classes a
    beat), no pedal: ``read_arrangement`` (``riffd eval``, ``dataset build --midi``) reads
    each bar's chord from its beat 1, as render does. Before, they named a bar's last beat
    with the next bar's bass: C A7 | Am Fmaj7 | F Gsus2 | G Csus2, the tune's chord tones
    counted against them."""
    from riffd.bridges.midiwrite import melody_track
    shapes = {"C": (36, 43, 52, 43), "Am": (33, 40, 48, 40), "F": (29, 36, 45, 36), "G": (31, 38, 47, 38)}
    bars = ["C", "Am", "F", "G"] * 2
    hand = [MelodyNote(bar * 4 + k / 2, 0.45, shapes[name][k % 4], 70) for bar, name in enumerate(bars)
            for k in range(8)]
    tune = [MelodyNote(bar * 4 + beat, 0.9, 72 + (beat % 2) * 2, 90) for bar in range(8) for beat in range(4)]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks += [melody_track(tune, 480, 0, name="MELODY"), melody_track(hand, 480, 1, name="PIANO")]
    midi.save(tmp_path / "left.mid")
    found = read_arrangement(tmp_path / "left.mid")
    assert [(c.beat, c.chord.name) for c in found.chords] == [(4.0 * bar, name) for bar, name in enumerate(bars)]


def test_a_tune_sung_by_a_soloist_then_the_choir_is_one_melody(tmp_path):
    """A verse's "Solo Voice" (bars 1-4), then the refrain's "Soprano" (bars 5-8) over a
    piano's block chords: the melody is the soloist's notes then the soprano's (before:
    the soprano's alone, the first part named like a melody, as in the corpus's Aloha
    'Oe), and the soprano's B over C names no Cmaj7. A "Voice 2" that sings the verse with
    "Voice 1" as well as the refrain is not taken up."""
    from riffd.bridges.midiwrite import melody_track
    block = [MelodyNote(bar * 4.0, 4.0, p, 70) for bar, name in enumerate(["C", "F", "G", "C"] * 2)
             for p in TRIADS[name]]
    verse = [MelodyNote(bar * 4 + beat, 1.0, 76 - beat, 90) for bar in range(4) for beat in range(4)]
    refrain = [MelodyNote(16 + 2 * k, 2.0, p, 80) for k, p in enumerate((71, 71, 72, 69, 74, 71, 72, 72))]
    for names, taken in ((("Solo Voice", "Soprano"), ["Soprano"]), (("Voice 1", "Voice 2"), [])):
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        second = refrain if taken else verse + refrain
        midi.tracks += [melody_track(verse, 480, 0, name=names[0]), melody_track(second, 480, 1, name=names[1]),
                        melody_track(block, 480, 2, name="Piano")]
        midi.save(tmp_path / "song.mid")
        found = read_arrangement(tmp_path / "song.mid")
        assert found.found["melody_part"] == names[0] and found.found["melody_taken_up"] == taken
        assert [n.pitch for n in found.melody] == [n.pitch for n in verse + (refrain if taken else [])]
        if taken:  # the soprano's B over bar 5's C is the tune, not a chord tone
            assert [c.chord.name for c in found.chords] == ["C", "F", "G", "C", "F", "G", "C"]
