
import re

import mido
import pytest

from riffd.bridges.midifile import MidiInputError, read_song
from riffd.bridges.midiwrite import melody_track
from riffd.presets import load_preset
from riffd.daemon.render import render_file
from riffd.models import load_model
from riffd.music.chords import parse_chord

from conftest import (PROGRESSION, TRIADS, pedalled_arpeggios, piano_with_its_tune, run_riffd, struck_bars,
                      waltz_chords)





@pytest.fixture
def chorale_mid(tmp_path, chorale_piece):
    path = tmp_path / "chorale.mid"
    chorale_piece.to_midi(with_melody=False).save(path)
    return path


def test_render_adds_melody_and_keeps_everything_else(tmp_path, chorale_mid, chorale_piece):
    out = tmp_path / "out.mid"
    report = render_file(chorale_mid, out, load_preset("chorale"), load_model("markov"), seed=1)
    src, dst = mido.MidiFile(chorale_mid), mido.MidiFile(out)
    assert dst.type == 1 and dst.ticks_per_beat == src.ticks_per_beat
    assert len(dst.tracks) == len(src.tracks) + 1
    for a, b in zip(src.tracks, dst.tracks):
        assert list(a) == list(b)          # tempo, meter and chord track unchanged
    melody = dst.tracks[-1]
    assert melody.name == "riffd melody"
    song = read_song(out)
    assert song.tempo == pytest.approx(chorale_piece.tempo) and song.meter == chorale_piece.meter
    notes = song.tracks[-1]
    assert len(notes) == len(report.notes) > 20
    assert {n.channel for n in notes} == {report.channel}
    assert report.channel not in {n.channel for n in song.tracks[1]}
    low, high = load_preset("chorale").register
    assert all(low <= n.pitch <= high for n in notes)
    assert notes[-1].end <= song.length_ticks
    assert report.chord_tone_share >= 0.7


def test_seed_makes_render_repeatable(tmp_path, chorale_mid):
    for name in ("a", "b"):
        render_file(chorale_mid, tmp_path / f"{name}.mid", load_preset("pop"), load_model("rules"), seed=5)
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    render_file(chorale_mid, tmp_path / "c.mid", load_preset("pop"), load_model("rules"), seed=6)
    assert (tmp_path / "a.mid").read_bytes() != (tmp_path / "c.mid").read_bytes()


def test_a_step_sequencers_coarse_ppqn_is_raised_to_hold_the_melody(tmp_path, chorale_piece):
    """A file at 4 PPQN (a step sequencer's sixteenths) cannot hold a triplet eighth, and
    at 1 PPQN two eighths round onto one tick. The output's PPQN is raised to a multiple
    of 12, its tracks scaled to sound as before, and every melody note lands where the
    model put it."""
    for ppqn in (4, 1):
        src = chorale_piece.to_midi(ppqn=ppqn, with_melody=False)
        src.save(tmp_path / "steps.mid")
        report = render_file(tmp_path / "steps.mid", tmp_path / "out.mid", load_preset("fiddle"),
                             load_model("markov"), seed=2)
        dst = mido.MidiFile(tmp_path / "out.mid")
        assert dst.ticks_per_beat == 12 and report.ppqn == (ppqn, 12)
        assert f"unchanged (PPQN {ppqn} raised to 12)" in report.summary()
        before, after = read_song(tmp_path / "steps.mid"), read_song(tmp_path / "out.mid")
        for a, b in zip(before.tracks, after.tracks):  # the chords sound where they did, in beats
            assert [(n.start / ppqn, n.end / ppqn, n.pitch) for n in a] == [(n.start / 12, n.end / 12, n.pitch) for n in b]
        assert dst.length == pytest.approx(src.length)
        starts = [n.start / 12 for n in after.tracks[-1]]
        assert starts == pytest.approx([n.start for n in report.notes])
        if ppqn == 1:  # eighths, which the file's ticks could not hold
            assert any(abs(s - round(s)) > 1e-6 for s in starts)


def test_cli_render_type0_input_and_chord_track_option(tmp_path, chorale_piece):
    merged = mido.merge_tracks(chorale_piece.to_midi(with_melody=False).tracks)
    type0 = mido.MidiFile(type=0, ticks_per_beat=480)
    type0.tracks.append(merged)
    src = tmp_path / "type0.mid"
    type0.save(src)
    result = run_riffd("render", str(src), "-o", str(tmp_path / "o.mid"), "--seed", "2", "--model", "rules")
    assert result.returncode == 0, result.stderr
    assert "riffd melody" in result.stdout and "preset pop, model rules, seed 2" in result.stdout
    assert len(mido.MidiFile(tmp_path / "o.mid").tracks) == 2
    bad = run_riffd("render", str(src), "-o", str(tmp_path / "p.mid"), "--chord-track", "5")
    assert bad.returncode == 2 and "track 5 does not exist" in bad.stderr
    negative = run_riffd("render", str(src), "-o", str(tmp_path / "p.mid"), "--seed", "-1")
    assert negative.returncode == 2 and "'--seed'" in negative.stderr and "Traceback" not in negative.stderr
    assert not (tmp_path / "p.mid").exists()


@pytest.mark.parametrize("content, reason", [
    (b"not midi at all", "not a readable MIDI file"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x00\x10\x00\x90",
     "not a readable MIDI file (it ends before its header or a track does)"),
    (b"MThd\x00\x00", "not a readable MIDI file (it ends before its header or a track does)"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\xe7\x28MTrk\x00\x00\x00\x0c\x00\x90\x39\x46\x60\x80\x39\x00"
     b"\x00\xff\x2f\x00", "its time is in SMPTE frames, not ticks per beat (PPQN)"),
    (None, "has no notes"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, content, reason):
    src = tmp_path / "in.mid"
    if content is None:
        empty = mido.MidiFile()
        empty.tracks.append(mido.MidiTrack([mido.MetaMessage("end_of_track")]))
        empty.save(src)
    else:
        src.write_bytes(content)
    out = tmp_path / "out.mid"
    result = run_riffd("render", str(src), "-o", str(out))
    assert result.returncode == 2
    assert reason in result.stderr and result.stderr.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".out.mid*"))


@pytest.mark.parametrize("meta, reason", [
    (mido.MetaMessage("set_tempo", tempo=0), "a set_tempo of 0 microseconds per beat is no tempo"),
    (mido.MetaMessage("time_signature", numerator=0, denominator=4), "0/4 is no time signature"),
    (mido.MetaMessage("time_signature", numerator=4, denominator=32), "riffd plays no meter of 4/32"),
    (mido.MetaMessage("time_signature", numerator=11, denominator=8), "meter 11/8 is not in the model's vocabulary"),
])
def test_a_header_riffd_cannot_play_is_bad_input(tmp_path, chorale_piece, meta, reason):
    midi = chorale_piece.to_midi(with_melody=False)
    if meta.type == "time_signature":  # its meter, not one followed at once by the file's 4/4 (which rules)
        midi.tracks[0][:] = [m for m in midi.tracks[0] if m.type != "time_signature"]
    midi.tracks[0].insert(0, meta)
    midi.save(tmp_path / "in.mid")
    result = run_riffd("render", str(tmp_path / "in.mid"), "-o", str(tmp_path / "out.mid"), "--model", "onnx")
    assert result.returncode == 2 and reason in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out.mid").exists()


def test_a_clock_byte_in_a_file_is_dropped_and_the_file_renders(tmp_path, chorale_piece):
    """A damaged file with a MIDI clock (0xF8) among its track's events: mido reads it, but a
    render copies every track and mido will not write a real-time message into a file, so
    riffd failed with exit 1 (found by fuzzing with random seeds). The clock goes, its delta
    time kept, and the copied tracks are the file's without it."""
    chorale_piece.to_midi(with_melody=False).save(tmp_path / "clean.mid")
    data = bytearray((tmp_path / "clean.mid").read_bytes())
    first = data.index(b"MTrk", data.index(b"MTrk") + 4)  # the chord track's chunk
    size = int.from_bytes(data[first + 4:first + 8], "big")
    data[first + 8:first + 8] = b"\x00\xf8"               # delta 0, then the clock's status byte
    data[first + 4:first + 8] = (size + 2).to_bytes(4, "big")
    (tmp_path / "in.mid").write_bytes(bytes(data))
    assert any(m.type == "clock" for m in mido.MidiFile(tmp_path / "in.mid").tracks[1])
    result = run_riffd("render", str(tmp_path / "in.mid"), "-o", str(tmp_path / "out.mid"), "--model", "rules")
    assert result.returncode == 0, result.stderr
    out, original = mido.MidiFile(tmp_path / "out.mid"), mido.MidiFile(tmp_path / "clean.mid")
    assert [list(t) for t in out.tracks[:2]] == [list(t) for t in original.tracks]
    assert out.tracks[2].name == "riffd melody"


def test_melody_only_file_has_no_chord_track(tmp_path):
    midi = mido.MidiFile()
    track = mido.MidiTrack()
    for i, p in enumerate([60, 62, 64]):
        track += [mido.Message("note_on", note=p, velocity=80, time=0 if i == 0 else 0),
                  mido.Message("note_off", note=p, velocity=0, time=480)]
    midi.tracks.append(track)
    midi.save(tmp_path / "m.mid")
    with pytest.raises(MidiInputError, match="no chord track"):
        from riffd.bridges.midifile import find_chord_track
        find_chord_track(read_song(tmp_path / "m.mid"))


def test_demo_renders_real_corpus(tmp_path):
    result = run_riffd("demo", "-o", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    outputs = sorted((tmp_path / "demo").glob("*-riffd.mid"))
    assert len(outputs) == 2
    assert "bwv269" in result.stdout and "riffd melody" in result.stdout
    # each piece with its preset's own model: the chorale on riff-chorale, the reel on riff-fiddle
    assert "preset chorale, model riff-chorale" in result.stdout and "preset fiddle, model riff-fiddle" in result.stdout
    assert "unavailable" not in result.stdout
    for path in outputs:
        assert mido.MidiFile(path).tracks[-1].name == "riffd melody"
        assert path.with_suffix(".wav").stat().st_size > 44100 and path.with_suffix(".png").exists()


def test_outputs_go_into_new_folders_and_an_unwritable_one_is_bad_input(tmp_path, chorale_mid):
    made = tmp_path / "new" / "deeper"
    result = run_riffd("render", str(chorale_mid), "-o", str(made / "o.mid"), "--model", "rules",
                       "--wav", str(made / "wav" / "o.wav"), "--png", str(made / "png" / "o.png"))
    assert result.returncode == 0, result.stderr
    assert all((made / name).stat().st_size > 0 for name in ("o.mid", "wav/o.wav", "png/o.png"))
    (tmp_path / "a file").write_text("")
    blocked = tmp_path / "a file" / "o.wav"
    result = run_riffd("render", str(chorale_mid), "-o", str(tmp_path / "p.mid"), "--model", "rules",
                       "--wav", str(blocked))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"{blocked}: cannot write there" in result.stderr and ".part" not in result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_wav_preview_follows_the_files_tempo_changes(tmp_path):
    """Four beats at 120 BPM, then four at 60 (a set_tempo on beat 4): the music lasts
    6 s. Read at its first tempo throughout, the preview lasted 4 s and a release."""
    import wave

    midi = mido.MidiFile(ticks_per_beat=480)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
                           mido.MetaMessage("set_tempo", tempo=1000000, time=4 * 480)])
    keys = mido.MidiTrack()
    for name in ("C", "G7"):
        pitches = parse_chord(name).voicing()
        keys += [mido.Message("note_on", note=p, velocity=80, time=0) for p in pitches]
        keys += [mido.Message("note_off", note=p, velocity=0, time=4 * 480 if k == 0 else 0) for k, p in enumerate(pitches)]
    midi.tracks += [meta, keys]
    midi.save(tmp_path / "in.mid")
    render_file(tmp_path / "in.mid", tmp_path / "o.mid", load_preset("pop"), load_model("rules"), seed=1,
                wav=tmp_path / "o.wav")
    with wave.open(str(tmp_path / "o.wav")) as w:
        assert 6.0 < w.getnframes() / w.getframerate() < 8.0


def test_the_wav_preview_holds_chords_as_the_sustain_pedal_does(tmp_path):
    """A pianist's file: each bar's chord struck an eighth long, the pedal down just after
    and up on the bar's fourth beat; the last bar's chord is struck again on its third
    beat, under the pedal. The preview sounds C and F to the pedal's lift (3 beats), G to
    its new strike (2), then to the lift (1); it played eighths."""
    from riffd.bridges.midifile import read_song
    from riffd.daemon.audio import song_parts

    events = []  # (tick, order, message): at one tick, the pedal after the keys
    for bar, name in enumerate(("C", "F", "G")):
        at = bar * 4 * 480
        for strike in (at, at + 960) if name == "G" else (at,):
            for p in parse_chord(name).voicing():
                events += [(strike, 0, mido.Message("note_on", note=p, velocity=80)),
                           (strike + 240, 0, mido.Message("note_off", note=p))]
        events += [(at + 10, 1, mido.Message("control_change", control=64, value=127)),
                   (at + 3 * 480, 1, mido.Message("control_change", control=64, value=0))]
    keys, now = mido.MidiTrack(), 0
    for tick, _, message in sorted(events, key=lambda e: e[:2]):
        keys.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks += [mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]), keys]
    midi.save(tmp_path / "pedal.mid")
    song = read_song(tmp_path / "pedal.mid")
    chords = song_parts(song, [], load_preset("pop"), (len(song.tracks) - 1,))[0].notes
    lengths = sorted((round(start / 0.5, 2), round((end - start) / 0.5, 2)) for start, end, _, _ in chords)
    assert sorted(set(lengths)) == [(0.0, 3.0), (4.0, 3.0), (8.0, 2.0), (10.0, 1.0)], lengths  # beats, 120 BPM


def test_broken_chords_under_the_pedal_are_named_as_they_sound(tmp_path):
    """The pianist's broken chords under the sustain pedal, beside a melody: with no
    chord track, chords are named per beat from both parts as they sound, so once a bar
    on its bar line; read key by key, 16 changes: each bar's last beat an inversion (C/E, Am/C)."""
    pedalled_arpeggios(tmp_path / "piano.mid")
    report = render_file(tmp_path / "piano.mid", tmp_path / "out.mid", load_preset("pop"), load_model("rules"),
                         seed=1)
    assert report.chord_track is None and report.chords == [(4.0 * bar, name) for bar, name in enumerate(PROGRESSION)]


def test_render_writes_a_wav_preview_and_a_piano_roll(tmp_path, chorale_mid):
    import wave

    import matplotlib.image
    import numpy as np

    out, wav, png = tmp_path / "o.mid", tmp_path / "o.wav", tmp_path / "o.png"
    result = run_riffd("render", str(chorale_mid), "-o", str(out), "--model", "rules", "--seed", "1",
                       "--preset", "chorale", "--wav", str(wav), "--png", str(png))
    assert result.returncode == 0, result.stderr
    song = read_song(out)
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 44100)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2) / 32768.0
    seconds = song.length_ticks / song.ppqn * 60.0 / song.tempo
    assert seconds < len(pcm) / 44100 < seconds + 2.0      # the song, then the last release
    assert 0.3 < np.abs(pcm).max() <= 10 ** (-1 / 20) + 1e-4  # loud, never clipped
    # sound where the melody plays: each second with a note-on has signal
    melody = song.tracks[-1]
    for n in melody[:10]:
        at = int(n.start / song.ppqn * 60.0 / song.tempo * 44100)
        assert np.abs(pcm[at:at + 2000]).max() > 0.01
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[1] > 600 and image.shape[2] == 3   # opaque: RGB, no alpha
    colours = {tuple(np.round(px[:3] * 255).astype(int)) for px in image.reshape(-1, image.shape[2])[::7]}
    assert (0x7f, 0x9c, 0xc4) in colours and (0xe0, 0x66, 0x2b) in colours   # chords and melody drawn


def test_synth_patch_comes_from_the_preset(tmp_path):
    import numpy as np

    from riffd.daemon.audio import Part, render_parts

    note = [(0.0, 0.5, 69, 100)]
    patch = dict(load_preset("pop").synth["melody"])
    sine = render_parts([Part(note, {**patch, "timbre": "sine", "cutoff_hz": 24000.0})])
    saw = render_parts([Part(note, {**patch, "timbre": "saw", "cutoff_hz": 24000.0})])
    spectrum = lambda x: np.abs(np.fft.rfft(x[2000:20000, 0]))
    harmonics = lambda x: spectrum(x)[int(3 * 440 * 18000 / 44100)] / spectrum(x).max()
    assert harmonics(saw) > 100 * harmonics(sine)               # a saw has overtones, a sine none
    hard_left = render_parts([Part(note, {**patch, "pan": -1.0})])
    assert not hard_left[:, 1].any() and hard_left[:, 0].any()


def test_piano_rolls_of_one_shape_share_a_frame_and_keep_nothing_of_each_other(tmp_path):
    import matplotlib.image
    import numpy as np

    from riffd.daemon import pianoroll

    melody = [(float(b), b + 0.5, 72) for b in range(16)]
    chords = [(0.0, 16.0, 60)]
    bars = [0.0, 4.0, 8.0, 12.0, 16.0]
    pianoroll.piano_roll(tmp_path / "a.png", chords, melody, [(0.0, "C")], bars, "a")
    pianoroll.piano_roll(tmp_path / "b.png", chords, melody[:2], [(0.0, "C")], bars, "a")
    pianoroll.piano_roll(tmp_path / "c.png", chords, [], [(0.0, "C")], bars, "a")
    assert len([k for k in pianoroll._frames if k[:3] == (16.0, 48, 84)]) == 1   # one frame, drawn once
    pianoroll._frames.clear()
    pianoroll.piano_roll(tmp_path / "fresh.png", chords, [], [(0.0, "C")], bars, "a")   # on a frame of its own
    a, b, c, fresh = (matplotlib.image.imread(tmp_path / f"{n}.png")[..., :3] for n in ("a", "b", "c", "fresh"))
    assert np.array_equal(c, fresh)                     # nothing of a or b is left on the kept frame
    orange = lambda image: int((np.abs(image - np.array([0xe0, 0x66, 0x2b]) / 255).sum(axis=2) < 0.02).sum())
    legend = orange(c)
    assert legend > 0 and 6 < (orange(a) - legend) / (orange(b) - legend) < 10   # 16 notes against 2


def _voices_file(piece, path, with_melody=False, stops=0):
    """``piece``'s chords split into one track per voice (lowest pitch first), as a
    choir's score is written: no track plays two notes at once; with ``stops`` N, every
    Nth note of the lowest voice has the next voice's note above it, as a cello's double
    stops."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    midi = piece.to_midi(with_melody=False)
    chord_track = midi.tracks.pop()
    voices = max(len(ps) for _, _, ps in piece.chords)
    for v in range(voices):
        line = [MelodyNote(s, e - s, sorted(ps)[v], 70) for s, e, ps in piece.chords if v < len(ps)]
        if v == 0 and stops:
            line += [MelodyNote(s, e - s, sorted(ps)[1], 70) for s, e, ps in piece.chords[::stops] if len(ps) > 1]
        midi.tracks.append(melody_track(line, midi.ticks_per_beat, v, name=f"voice {v + 1}"))
    if with_melody:
        midi.tracks.append(melody_track(piece.melody, midi.ticks_per_beat, 5, name="melody"))
    assert chord_track.name == "chords"
    midi.save(path)
    return voices


def root_at(chords, beat: float) -> str | None:
    """The root letter (and sign) of the chord of ``chords`` ((beat, name)) sounding at ``beat``."""
    return next((re.match("[A-G][#b]?", n)[0] for b, n in reversed(chords) if b <= beat + 1e-9), None)


def test_parts_in_one_voice_each_are_named_per_beat(tmp_path, chorale_mid, chorale_piece):
    voices = _voices_file(chorale_piece, tmp_path / "satb.mid")
    preset, model = load_preset("chorale"), load_model("rules")
    report = render_file(tmp_path / "satb.mid", tmp_path / "out.mid", preset, model, seed=1,
                         wav=tmp_path / "out.wav", png=tmp_path / "out.png")
    assert report.chord_track is None and report.voices == tuple(range(1, voices + 1))
    assert "one voice each, chords named per beat" in report.summary()
    # mostly the chords the block-chord file's chord track gives, beat for beat (a beat of
    # two pitch classes is named with the next one: Bmaj7 where the strike says D, say)
    whole = render_file(chorale_mid, tmp_path / "whole.mid", preset, model, seed=1)
    beats = range(int(max(b for b, _ in whole.chords)))
    agree = sum(root_at(report.chords, b) == root_at(whole.chords, b) for b in beats) / len(beats)
    assert agree > 0.7, agree
    assert len(report.notes) > 20 and (tmp_path / "out.wav").stat().st_size > 0 and (tmp_path / "out.png").exists()
    assert len(mido.MidiFile(tmp_path / "out.mid").tracks) == voices + 2  # conductor, voices, riffd melody


def test_a_cellos_double_stops_make_no_chord_track_among_its_parts(tmp_path, chorale_mid, chorale_piece):
    """A chorale as a string quartet plays it, the cello with the viola's note above every
    third of its own (double stops: two notes at a third of its onsets). Before, the cello was the
    chord track, and its dyads named the chords; now it is a line like the others, and
    the chords are named per beat from all four (Schumann's op. 41 no. 1, second
    movement: 10 chord changes before, 247 now)."""
    from riffd.bridges.midifile import chordal_share, max_polyphony
    _voices_file(chorale_piece, tmp_path / "quartet.mid", stops=3)
    cello = read_song(tmp_path / "quartet.mid").tracks[1]
    assert max_polyphony(cello) == 2 and 0.2 < chordal_share(cello) < 0.5
    preset, model = load_preset("chorale"), load_model("rules")
    report = render_file(tmp_path / "quartet.mid", tmp_path / "out.mid", preset, model, seed=1)
    assert report.chord_track is None and "one voice each, chords named per beat" in report.summary()
    whole = render_file(chorale_mid, tmp_path / "whole.mid", preset, model, seed=1)
    beats = range(int(max(b for b, _ in whole.chords)))
    agree = sum(root_at(report.chords, b) == root_at(whole.chords, b) for b in beats) / len(beats)
    assert agree > 0.7, agree


def test_a_pianos_two_staves_name_the_chords_together(tmp_path, chorale_mid, chorale_piece):
    """A chorale as a piano plays it, the right hand (soprano and alto) and the left (tenor
    and bass) on two tracks of one name and channel, as notation programs and music21
    write a piano: its chords are named from both hands, as the block-chord file's
    (before, from one hand's dyads: on 30 chorales of bwv2*, roots agreed on 0.446 of the
    beats, now 0.830). Two tracks of other names stay apart."""
    from riffd.models.protocol import MelodyNote
    right = list(chorale_piece.melody) + [MelodyNote(s, e - s, sorted(ps)[-1], 70)
                                          for s, e, ps in chorale_piece.chords]
    left = [MelodyNote(s, e - s, p, 70) for s, e, ps in chorale_piece.chords for p in sorted(ps)[:-1]]
    preset, model = load_preset("chorale"), load_model("rules")
    whole = render_file(chorale_mid, tmp_path / "whole.mid", preset, model, seed=1)
    beats = range(int(max(b for b, _ in whole.chords)))
    agree = {}
    for names in (("Piano", "Piano"), ("Piano", "Strings")):
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks += [melody_track(sorted(hand, key=lambda n: (n.start, n.pitch)), 480, 0, name=name)
                        for hand, name in zip((right, left), names)]
        midi.save(tmp_path / "piano.mid")
        report = render_file(tmp_path / "piano.mid", tmp_path / "out.mid", preset, model, seed=1,
                             wav=tmp_path / "out.wav")
        agree[names[1]] = sum(root_at(report.chords, b) == root_at(whole.chords, b) for b in beats) / len(beats)
        if names[1] == "Piano":
            assert report.staves == (0, 1) and "chord tracks 0, 1 unchanged" in report.summary(), report.summary()
        else:
            assert report.staves == () and report.summary().split(": ", 1)[1].startswith("chord track ")
    assert agree["Piano"] > 0.7 and agree["Piano"] > agree["Strings"] + 0.2, agree


def test_continuing_a_melody_over_voices_leaves_it_out_of_the_chords(tmp_path, chorale_piece):
    voices = _voices_file(chorale_piece, tmp_path / "satb+melody.mid", with_melody=True)
    half = chorale_piece.melody[:len(chorale_piece.melody) // 2]
    from riffd.daemon.render import render_song
    song = read_song(tmp_path / "satb+melody.mid")
    song.tracks[-1] = [n for n in song.tracks[-1] if n.start < half[-1].end * song.ppqn]  # the melody stops halfway
    report = render_song(song, tmp_path / "out.mid", load_preset("chorale"), load_model("rules"), seed=1,
                         continue_melody=True)
    assert report.voices == tuple(range(1, voices + 1))  # the melody's track is no voice of the chords
    assert min(n.start for n in report.notes) >= half[-1].end - 1e-9


def test_a_legato_melody_over_an_arpeggiated_piano_is_no_chord_track(tmp_path):
    """A melody that overlaps itself by a few ticks plays one voice, not chords: over a
    piano that arpeggiates in one voice, the file's chords are named per beat, from the
    piano alone where the melody is named like one (its passing notes name no chords;
    before, C C# D over Am F C G made them Am Fmaj7 ..., and the leadSheet folder's
    "Alexander's Ragtime Band" began Amaj7/G# F Ab), from both where it is unnamed (a
    voice of a choir, as far as riffd can tell). The summary says from which parts
    ("track 0", not "tracks 0", for one). With --continue, a tune that plays to the
    song's end leaves nothing to continue, and the summary says so."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    arpeggios = {"Am": (57, 60, 64, 69), "F": (53, 57, 60, 65), "C": (48, 52, 55, 60), "G": (55, 59, 62, 67)}
    piano = [MelodyNote(bar * 4 + k / 4, 0.25, arpeggios[name][k % 4], 70)  # sixteenths, one voice
             for bar, name in enumerate(["Am", "F", "C", "G"] * 2) for k in range(16)]
    legato = [MelodyNote(beat, 1.0 + 10 / 480, 72 + (beat % 3), 80) for beat in range(24)]  # 10 ticks over
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks += [melody_track(piano, 480, 0, name="PIANO"), melody_track(legato, 480, 1, name="MELODY")]
    midi.save(tmp_path / "song.mid")
    preset, model = load_preset("folk"), load_model("rules")
    both = render_file(tmp_path / "song.mid", tmp_path / "out.mid", preset, model, seed=1)
    assert both.chord_track is None and both.voices == (0,)  # MELODY is no chord member
    assert [name for _, name in both.chords] == ["Am", "F", "C", "G"] * 2, both.chords
    from riffd.daemon.render import render_song
    continued = render_song(read_song(tmp_path / "song.mid"), tmp_path / "more.mid", preset, model, seed=1,
                            continue_melody=True)
    assert continued.voices == (0,)  # the piano alone names the chords
    assert continued.chords == both.chords
    assert "track 0 (in one voice, chords named per beat)" in continued.summary()  # not "tracks 0 (... each"
    midi.tracks[1].name = ""
    midi.save(tmp_path / "unnamed.mid")
    unnamed = render_file(tmp_path / "unnamed.mid", tmp_path / "out.mid", preset, model, seed=1)
    assert unnamed.voices == (0, 1) and "tracks 0, 1 (one voice each, chords named per beat)" in unnamed.summary()
    assert continued.notes and "nothing to continue" not in continued.summary()
    # a tune to the song's end leaves nothing to continue, and the summary says why there are no notes
    midi.tracks[1] = melody_track([MelodyNote(beat, 1.0, 72 + beat % 3, 80) for beat in range(32)], 480, 1,
                                  name="MELODY")
    midi.save(tmp_path / "whole.mid")
    whole = render_song(read_song(tmp_path / "whole.mid"), tmp_path / "none.mid", preset, model, seed=1,
                        continue_melody=True)
    assert not whole.notes
    assert whole.summary().endswith("; the file's melody plays to beat 32, its end: nothing to continue")


def test_lines_played_with_late_releases_are_one_voice_each(tmp_path):
    """A pop arrangement as people play it: a MELODY, a BRIDGE line a third or more under it and a
    PIANO arpeggiating in eighths, each note let go 70 ticks (480 PPQN) after the next is
    struck. No part plays chords: the chords are named per beat from PIANO and BRIDGE
    (the MELODY, named so, is left out), on the
    beats and roots of the same file played without the overlaps, and none after its
    end. Before, the bridge counted as the chord track (two notes at once at every
    onset) and gave one chord for eight bars."""
    from riffd.bridges.midifile import max_polyphony
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    over = 70 / 480
    arpeggios = {"Am": (57, 60, 64, 69), "F": (53, 57, 60, 65), "C": (48, 52, 55, 60), "G": (55, 59, 62, 67)}
    piano = [MelodyNote(bar * 4 + k / 2, 0.5 + over, arpeggios[name][k % 4], 70)
             for bar, name in enumerate(["Am", "F", "C", "G"] * 2) for k in range(8)]
    tops = {"Am": (76, 72, 69, 72), "F": (77, 72, 69, 72), "C": (76, 72, 67, 72), "G": (74, 71, 67, 71)}
    tune = [MelodyNote(bar * 4 + beat, 1.0 + over, tops[name][beat], 80)
            for bar, name in enumerate(["Am", "F", "C", "G"] * 2) for beat in range(4)]
    # under each note, the next lower tone of its chord a third or more down
    bridge = [MelodyNote(n.start, n.duration, max(p for p in range(n.pitch - 12, n.pitch - 2)
                                                  if p % 12 in {q % 12 for q in arpeggios[name]}), 70)
              for n, name in zip(tune, [name for name in ["Am", "F", "C", "G"] * 2 for _ in range(4)])]
    songs = {}
    for name, cut in (("played", 0.0), ("written", over)):
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks += [melody_track([MelodyNote(n.start, n.duration - cut, n.pitch, n.velocity) for n in part],
                                     480, k, name=label)
                        for k, (label, part) in enumerate((("PIANO", piano), ("MELODY", tune), ("BRIDGE", bridge)))]
        midi.save(tmp_path / f"{name}.mid")
        songs[name] = render_file(tmp_path / f"{name}.mid", tmp_path / f"{name} out.mid", load_preset("pop"),
                                  load_model("rules"), seed=1)
    assert max_polyphony(read_song(tmp_path / "played.mid").tracks[2], 30) == 1
    assert songs["played"].chord_track is None and songs["played"].voices == (0, 2)  # MELODY is no chord member
    def roots(report):  # a late release may add a tone to a name (Am as Am7), never a change of root
        named = [(beat, re.match("[A-G][#b]?", name)[0]) for beat, name in report.chords]
        return [(beat, root) for k, (beat, root) in enumerate(named) if not k or named[k - 1][1] != root]
    assert roots(songs["played"]) == roots(songs["written"]) and len(songs["played"].chords) >= 8
    assert [name for beat, name in roots(songs["played"]) if beat % 4 == 0] == ["A", "F", "C", "G"] * 2


def test_a_type_0_file_is_read_channel_by_channel_as_its_type_1_original(tmp_path):
    """Every part in one track, a channel each: the chords named are the type-1 file's,
    not those of the melody and the piano struck together, and the summary names the
    channels it read them from."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    arpeggios = {"Am": (57, 60, 64, 69), "F": (53, 57, 60, 65), "C": (48, 52, 55, 60), "G": (55, 59, 62, 67)}
    piano = [MelodyNote(bar * 4 + k / 4, 0.25, arpeggios[name][k % 4], 70)
             for bar, name in enumerate(["Am", "F", "C", "G"] * 2) for k in range(16)]
    tune = [MelodyNote(beat, 1.0, 72 + (beat % 3), 80) for beat in range(32)]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    # the tune unnamed, as the type-0 file's channels are: both name the chords
    midi.tracks += [melody_track(piano, 480, 0, name="PIANO"), melody_track(tune, 480, 1, name="")]
    midi.save(tmp_path / "type1.mid")
    single = mido.MidiFile(type=0, ticks_per_beat=480)
    single.tracks.append(mido.merge_tracks(midi.tracks))
    single.save(tmp_path / "type0.mid")
    song = read_song(tmp_path / "type0.mid")
    assert len(song.tracks) == 2 and song.names == ["channel 1", "channel 2"]
    preset, model = load_preset("folk"), load_model("rules")
    one = render_file(tmp_path / "type1.mid", tmp_path / "one.mid", preset, model, seed=1)
    zero = render_file(tmp_path / "type0.mid", tmp_path / "zero.mid", preset, model, seed=1)
    assert zero.chords == one.chords and zero.voices == one.voices == (0, 1)
    assert [re.match("[A-G][#b]?", name)[0] for beat, name in zero.chords if beat % 4 == 0][:4] == ["A", "F", "C", "G"]
    assert zero.summary().split(": ", 1)[1].startswith("channels 1, 2 (one voice each")
    assert one.summary().split(": ", 1)[1].startswith("tracks 0, 1 (one voice each")
    assert [n.pitch for n in zero.notes] == [n.pitch for n in one.notes]
    assert len(mido.MidiFile(tmp_path / "zero.mid").tracks) == 2  # the one track, unchanged, and riffd's


def test_a_chord_track_with_no_chord_is_refused(tmp_path, chorale_piece):
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    midi = chorale_piece.to_midi(with_melody=False)
    midi.tracks.append(melody_track([MelodyNote(b, 1.0, 36, 70) for b in range(16)], 480, 3, name="pedal"))
    midi.save(tmp_path / "pedal.mid")
    result = run_riffd("render", str(tmp_path / "pedal.mid"), "-o", str(tmp_path / "out.mid"), "--chord-track", "2",
                       "--model", "rules")
    assert result.returncode == 2 and "no chord recognized in track 2" in result.stderr
    assert not (tmp_path / "out.mid").exists()


def test_an_arpeggio_names_its_chords_per_beat(tmp_path):
    """A one-voice arpeggio is the chord track when it is chosen (--chord-track), or when
    it is a file's one part and named like an accompaniment; a lone part named like a
    melody, or not at all, is no chord track."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    arpeggios = {"Am": (57, 60, 64, 69), "F": (53, 57, 60, 65), "C": (48, 52, 55, 60), "G": (55, 59, 62, 67)}
    notes = [MelodyNote(bar * 4 + k / 4, 0.25, arpeggios[name][k % 4], 90)
             for bar, name in enumerate(["Am", "F", "C", "G"] * 2) for k in range(16)]
    for name in ("Arp", "lead", ""):
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks.append(melody_track(notes, 480, 0, name=name))
        midi.save(tmp_path / f"{name or 'unnamed'}.mid")
    chosen = run_riffd("render", str(tmp_path / "unnamed.mid"), "-o", str(tmp_path / "chosen.mid"),
                       "--chord-track", "0", "--model", "rules", "--preset", "trance")
    assert chosen.returncode == 0, chosen.stderr
    assert "8 chord changes (Am F C G Am F C G)" in chosen.stdout
    named = render_file(tmp_path / "Arp.mid", tmp_path / "named.mid", load_preset("trance"), load_model("rules"))
    assert named.chord_track == 0 and [c for _, c in named.chords] == ["Am", "F", "C", "G"] * 2
    for name in ("lead", "unnamed"):
        result = run_riffd("render", str(tmp_path / f"{name}.mid"), "-o", str(tmp_path / "out.mid"), "--model", "rules")
        assert result.returncode == 2 and "--chord-track N names the chords of one" in result.stderr


def test_a_broken_chords_last_beat_is_named_in_its_own_bar(tmp_path):
    """A piano's left hand alone in eighths, bass, fifth, tenth, fifth (two pitch classes
    a beat): each bar is its chord, from beat 1. A beat whose two pitch classes are the
    chord before's goes on with it: the last beat of C is not named with the next bar's
    A (A7, as it was)."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    shapes = {"C": (36, 43, 52, 43), "Am": (33, 40, 48, 40), "F": (29, 36, 45, 36), "G": (31, 38, 47, 38)}
    notes = [MelodyNote(bar * 4 + k / 2, 0.45, shapes[name][k % 4], 70)
             for bar, name in enumerate(["C", "Am", "F", "G"] * 2) for k in range(8)]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(melody_track(notes, 480, 0, name="Piano"))
    midi.save(tmp_path / "left.mid")
    report = render_file(tmp_path / "left.mid", tmp_path / "out.mid", load_preset("pop"), load_model("rules"), seed=1)
    assert report.chords == [(bar * 4.0, name) for bar, name in enumerate(["C", "Am", "F", "G"] * 2)], report.chords


def test_a_drum_track_is_never_the_chord_track(tmp_path):
    """A band's file: drums on channel 10 (a kick, a snare and a crash under the hi-hat
    sound together, more notes than the keys), keys in block chords, a bass. The chords
    are the keys', in the type-1 file, in its type-0 twin, in a type-1 file of a tempo
    track and one track of every part (read per channel, as the type-0 file), and where
    the drums share the keys' track among others; drums beside single lines are no chord
    track."""
    from riffd.bridges.midifile import find_chord_track
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    hits = [MelodyNote(k / 2, 0.1, pitch, 100) for k in range(64)
            for pitch in (42, 36 if k % 4 == 0 else 38 if k % 4 == 2 else None, 49 if k % 8 == 0 else None) if pitch]
    triads = {"Am": (57, 60, 64), "F": (53, 57, 60), "C": (48, 52, 55), "G": (55, 59, 62)}
    keys = [MelodyNote(bar * 4 + beat, 0.95, p, 80) for bar, name in enumerate(["Am", "F", "C", "G"] * 2)
            for beat in range(4) for p in triads[name]]
    bass = [MelodyNote(bar * 4, 3.9, triads[name][0] - 12, 90) for bar, name in enumerate(["Am", "F", "C", "G"] * 2)]
    band = mido.MidiFile(type=1, ticks_per_beat=480)
    band.tracks += [melody_track(hits, 480, 9, name="Drums"), melody_track(keys, 480, 0, name="Keys"),
                    melody_track(bass, 480, 1, name="Bass")]
    band.save(tmp_path / "band.mid")
    single = mido.MidiFile(type=0, ticks_per_beat=480)
    single.tracks.append(mido.merge_tracks(band.tracks))
    single.save(tmp_path / "band0.mid")
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    mido.MidiFile(type=1, ticks_per_beat=480, tracks=[tempo, single.tracks[0]]).save(tmp_path / "band1.mid")
    shared = mido.merge_tracks([band.tracks[0], band.tracks[1]])
    mido.MidiFile(type=1, ticks_per_beat=480, tracks=[shared, band.tracks[2]]).save(tmp_path / "shared.mid")
    preset, model = load_preset("pop"), load_model("rules")
    # the one-track files' parts: channels 1, 2, 10
    for name, keys_at in (("band", 1), ("band0", 0), ("band1", 0), ("shared", 0)):
        report = render_file(tmp_path / f"{name}.mid", tmp_path / f"{name}-out.mid", preset, model, seed=1)
        assert report.chord_track == keys_at, report.summary()
        assert [c for _, c in report.chords] == ["Am", "F", "C", "G"] * 2, report.chords
        assert "chord channel 1 unchanged" in report.summary() or name in ("band", "shared")
        tracks = len(mido.MidiFile(tmp_path / f"{name}.mid").tracks)
        assert len(mido.MidiFile(tmp_path / f"{name}-out.mid").tracks) == tracks + 1  # every track kept
    drums_and_bass = mido.MidiFile(type=1, ticks_per_beat=480)
    drums_and_bass.tracks += [band.tracks[0], band.tracks[2]]
    drums_and_bass.save(tmp_path / "groove.mid")
    with pytest.raises(MidiInputError, match=r"no track but the drums \(channel 10\) plays two notes at once"):
        find_chord_track(read_song(tmp_path / "groove.mid"))


def test_a_melody_with_a_closing_chord_is_not_the_chord_track(tmp_path):
    """Keys in two-note shells (third and seventh) over a bass track, beside a tune that
    ends on a three-note chord: the keys name the chords, though the tune is more
    polyphonic, whether it is unnamed (few of its onsets are chords) or named Melody and
    in thirds throughout (a track named like a melody gives way to any other that plays
    two notes at once). Alone with the bass, the tune in thirds is the chord track, but the
    tune's one chord makes it none: the chords are named per beat from tune and bass
    together, from the first bar on (taken for the chord track, it named one chord, A,
    at its last bar)."""
    from riffd.bridges.midifile import chordal_share
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    shells = {"Dm7": (53, 60), "G7": (53, 59), "Cmaj7": (52, 59), "A7": (55, 61)}
    roots = {"Dm7": 38, "G7": 43, "Cmaj7": 36, "A7": 33}
    progression = ["Dm7", "G7", "Cmaj7", "A7"] * 2
    keys = [MelodyNote(bar * 4 + beat, 1.9, p, 70) for bar, name in enumerate(progression) for beat in (0, 2)
            for p in shells[name]]
    bass = [MelodyNote(bar * 4, 3.9, roots[name], 90) for bar, name in enumerate(progression)]
    ending = [MelodyNote(28, 4.0, p, 80) for p in (69, 73, 76)]
    tune = [MelodyNote(beat, 1.0, 72 + beat % 5, 80) for beat in range(28)] + ending
    thirds = [MelodyNote(n.start, n.duration, n.pitch + d, 80) for n in tune[:28] for d in (0, 4)] + ending
    assert chordal_share(read_song_of(tmp_path, [tune]).tracks[0]) < 0.1
    preset, model = load_preset("jazz"), load_model("rules")
    for name, lead in (("", tune), ("Melody", thirds)):
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks += [melody_track(lead, 480, 0, name=name), melody_track(keys, 480, 1, name="Keys"),
                        melody_track(bass, 480, 2, name="Bass")]
        midi.save(tmp_path / "combo.mid")
        report = render_file(tmp_path / "combo.mid", tmp_path / "out.mid", preset, model, seed=1)
        assert report.chord_track == 1, (name, report.summary())
        del midi.tracks[1]
        midi.save(tmp_path / "duo.mid")
        duo = render_file(tmp_path / "duo.mid", tmp_path / "duo-out.mid", preset, model, seed=1)
        if name:  # in thirds throughout, the lead strikes chords: the chord track
            assert duo.chord_track == 0, duo.summary()
            continue
        assert duo.chord_track is None and duo.voices == (0, 1), duo.summary()
        assert duo.chords[0][0] == 0 and len(duo.chords) >= len(progression), duo.summary()
        assert min(n.start for n in duo.notes) < 4, duo.summary()


def test_a_hymn_whose_alto_divides_once_is_named_per_beat_from_its_voices(tmp_path):
    """Four voices, a track each, the alto dividing into two notes for one beat (as in
    "Lift Every Voice and Sing" in the music21 corpus): no track is a chord track, the
    chords are named per beat from the four voices (a soprano is a chord member, though named
    like a melody) from the first bar, and the melody
    plays the whole hymn. Taken for the chord track, the alto named one chord, at its
    divisi, and the hymn got a melody of a note or two."""
    from riffd.models.protocol import MelodyNote
    voices = [[], [], [], []]  # soprano, alto, tenor, bass
    for bar, name in enumerate(PROGRESSION):
        bass, third, fifth = TRIADS[name]
        for beat in range(4):
            at = bar * 4 + beat
            for k, pitch in enumerate((third + 24 + 3 * (beat % 2), fifth + 12, bass + 12 + (beat == 3) * 12, bass)):
                voices[k].append(MelodyNote(at, 1.0, pitch, 80))
    voices[1].append(MelodyNote(21, 1.0, voices[1][21].pitch - 3, 80))  # the alto's divisi, bar 6
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    for k, name in enumerate(("Soprano", "Alto", "Tenor", "Bass")):
        midi.tracks.append(melody_track(voices[k], 480, 0, name=name))
    midi.save(tmp_path / "hymn.mid")
    report = render_file(tmp_path / "hymn.mid", tmp_path / "out.mid", load_preset("chorale"), load_model("rules"),
                         seed=1)
    assert report.chord_track is None and report.voices == (0, 1, 2, 3), report.summary()
    by_bar = {int(beat // 4): name for beat, name in report.chords if beat % 4 == 0}
    assert [by_bar.get(bar) for bar in range(len(PROGRESSION))] == PROGRESSION, report.summary()
    assert min(n.start for n in report.notes) < 4 and max(n.start for n in report.notes) >= 28, report.summary()


def test_a_chord_track_that_names_no_chord_gives_way_to_the_parts_together(tmp_path):
    """A string quartet whose second violin's staff holds two voices in unison on a
    third of its onsets (as music21 writes Haydn's op. 1 no. 1, third movement): it
    strikes "two notes at once" most often, but a unison names no chord, so the chords
    are named per beat from the four parts (before, the file was refused: "no chord
    recognized in track 1", as Haydn's was in the watched folder). Chosen with
    --chord-track, it is still refused."""
    from riffd.models.protocol import MelodyNote
    parts = [[], [], [], []]  # violin I, violin II, viola, cello
    for bar, name in enumerate(PROGRESSION):
        root, third, fifth = TRIADS[name]
        for beat in range(4):
            at = bar * 4 + beat
            parts[0].append(MelodyNote(at, 1.0, third + 24, 80))
            parts[1].append(MelodyNote(at, 1.0, fifth + 12, 70))
            if beat % 3 == 0:  # the staff's second voice, in unison
                parts[1].append(MelodyNote(at, 1.0, fifth + 12, 70))
            parts[2].append(MelodyNote(at, 1.0, root + 12, 70))
            parts[3].append(MelodyNote(at, 1.0, root, 70))
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    for k, name in enumerate(("Violin I", "Violin II", "Viola", "Cello")):
        midi.tracks.append(melody_track(parts[k], 480, k, name=name))
    midi.save(tmp_path / "quartet.mid")
    report = render_file(tmp_path / "quartet.mid", tmp_path / "out.mid", load_preset("air"), load_model("rules"),
                         seed=1)
    assert report.chord_track is None and report.voices == (0, 1, 2, 3), report.summary()
    assert [root_at(report.chords, bar * 4) for bar in range(len(PROGRESSION))] == \
        [name[0] for name in PROGRESSION], report.summary()
    assert len(report.notes) > 16
    forced = run_riffd("render", str(tmp_path / "quartet.mid"), "-o", str(tmp_path / "forced.mid"),
                       "--chord-track", "1", "--model", "rules")
    assert forced.returncode == 2 and "no chord recognized in track 1" in forced.stderr


def read_song_of(tmp_path, parts):
    """The Song of a file of ``parts`` (MelodyNote lists), a track each."""
    from riffd.bridges.midiwrite import melody_track
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks += [melody_track(notes, 480, k) for k, notes in enumerate(parts)]
    midi.save(tmp_path / "parts.mid")
    return read_song(tmp_path / "parts.mid")


def test_a_strummed_guitar_part_is_named_one_chord_a_bar(tmp_path):
    """A guitar part strummed down and up on every beat, a string every 0.03 beat (15 ms
    at 120 BPM, longer than a strike's window): each bar's chord once, on its lowest
    string, as a block-chord part of the same chords names them."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    shapes = {"Am": (45, 52, 57, 60, 64), "F": (41, 48, 53, 57, 60, 65), "C": (48, 52, 55, 60, 64),
              "G": (43, 47, 50, 55, 59, 67), "E7": (40, 47, 50, 56, 59, 64)}
    progression = ["Am", "F", "C", "G", "Am", "E7", "Am", "Am"]
    strums = [MelodyNote(bar * 4 + beat + i * 0.03, 0.9 - i * 0.03, p, 80)
              for bar, name in enumerate(progression) for beat in range(4)
              for i, p in enumerate(shapes[name] if beat % 2 == 0 else shapes[name][::-1])]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(melody_track(strums, 480, 0, name="Guitar"))
    midi.save(tmp_path / "guitar.mid")
    report = render_file(tmp_path / "guitar.mid", tmp_path / "out.mid", load_preset("pop"), load_model("rules"), seed=1)
    assert report.chords == [(0.0, "Am"), (4.0, "F"), (8.0, "C"), (12.0, "G"), (16.0, "Am"), (20.0, "E7"),
                             (24.0, "Am")]


def test_a_piano_part_with_its_tune_on_top_names_the_left_hands_chords(tmp_path):
    """One piano track: the left hand holds a triad a bar, the right hand plays a tune
    in eighths an octave and more above (passing notes among them). The chords are the
    left hand's, one a bar, not a new name for each note of the tune."""
    from riffd.bridges.midiwrite import melody_track
    left, right, _ = piano_with_its_tune()
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(melody_track(left + right, 480, 0, name="Piano"))
    midi.save(tmp_path / "piano.mid")
    report = render_file(tmp_path / "piano.mid", tmp_path / "out.mid", load_preset("pop"), load_model("rules"), seed=1)
    assert report.chords == [(bar * 4.0, name) for bar, name in enumerate(PROGRESSION)], report.chords


def test_continue_takes_the_tune_not_the_bass_line(tmp_path):
    """--continue over a band's unnamed tracks: the bass plays more notes than the tune,
    but a one-voice line that averages under C3 is a bass line; the tune is continued."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.daemon.render import given_track, render_song
    from riffd.models.protocol import MelodyNote
    left, right, _ = piano_with_its_tune()
    bass = [MelodyNote(beat, 0.5, 36 + beat % 5, 90) for beat in range(32)]
    tune = [n for n in right if n.start < 8]
    band = mido.MidiFile(type=1, ticks_per_beat=480)
    band.tracks += [melody_track(left, 480, 0, name=""), melody_track(bass, 480, 1, name=""),
                    melody_track(tune, 480, 2, name="")]
    band.save(tmp_path / "band.mid")
    song = read_song(tmp_path / "band.mid")
    assert len(song.tracks[1]) > len(song.tracks[2]) and given_track(song, 0) == 2
    report = render_song(song, tmp_path / "out.mid", load_preset("pop"), load_model("rules"), seed=1,
                         continue_melody=True)
    assert report.notes and report.notes[0].start >= 8.0             # after the tune, where it ends


def test_continue_and_eval_take_the_same_tune(tmp_path):
    """`render --continue` and `riffd eval` find a file's melody alike: a track named
    "Melody" before a choir's "Voice 1" (eval took the first named, render the highest),
    else the highest line that is no bass, one named like an accompaniment last. Under the
    tune in quarters, an unnamed counter-line in eighths plays more notes (render took it);
    over it, an "Arp" in sixteenths sounds higher (both took it). The tune is each time the
    one taken."""
    from riffd.daemon.render import given_track
    from riffd.models.evaluation.arrangements import read_arrangement
    from riffd.models.protocol import MelodyNote
    left, right, _ = piano_with_its_tune()
    tune = [n for n in right if n.start == int(n.start)]
    counter = [MelodyNote(i / 2, 0.5, 60 + i % 8, 70) for i in range(64)]
    arp = [MelodyNote(i / 4, 0.25, 84 + (0, 4, 7, 12)[i % 4], 60) for i in range(128)]
    for name, lines, expected in (("counter", [(counter, ""), (tune, "")], 2), ("arp", [(tune, ""), (arp, "Arp")], 1),
                                  ("voices", [(arp, "Voice 1"), (tune, "Melody")], 2)):
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks += [melody_track(left, 480, 0, name="Keys")]
        midi.tracks += [melody_track(notes, 480, k + 1, name=track) for k, (notes, track) in enumerate(lines)]
        midi.save(tmp_path / f"{name}.mid")
        assert given_track(read_song(tmp_path / f"{name}.mid"), 0) == expected, name
        assert read_arrangement(tmp_path / f"{name}.mid").found["melody_track"] == expected, name


def test_continue_takes_a_lead_split_over_two_tracks(tmp_path):
    """A lead vocal on two tracks, "Lead Vox Verse" (bars 1-2) and "Lead Vox Chorus" (bars
    5-6): `render --continue` continues after the chorus, the tune `riffd eval` reads
    (before, it took the verse alone and played over the chorus from bar 3)."""
    from riffd.daemon.render import given_melody, render_song
    from riffd.models.evaluation.arrangements import read_arrangement
    left, right, _ = piano_with_its_tune()
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks += [melody_track(left, 480, 0, name="Piano"),
                    melody_track([n for n in right if n.start < 8], 480, 1, name="Lead Vox Verse"),
                    melody_track([n for n in right if 16 <= n.start < 24], 480, 2, name="Lead Vox Chorus")]
    midi.save(tmp_path / "split.mid")
    song = read_song(tmp_path / "split.mid")
    given = given_melody(song, 0)
    assert [(n.start, n.pitch) for n in given] == [(n.start, n.pitch) for n in read_arrangement(
        tmp_path / "split.mid").melody] == [(n.start, n.pitch) for n in right if n.start < 8 or 16 <= n.start < 24]
    report = render_song(song, tmp_path / "out.mid", load_preset("pop"), load_model("rules"), seed=1,
                         continue_melody=True)
    assert report.notes and min(n.start for n in report.notes) >= 24.0


def test_render_continue_on_the_command_line_starts_where_the_tune_ends(tmp_path):
    """`riffd render IN --continue`: riffd's melody starts where the file's tune (its
    first two bars here) ends; without it, at the first chord. A file with no melody
    to continue is refused with the reason, and nothing is written."""
    from riffd.bridges.midiwrite import melody_track
    left, right, _ = piano_with_its_tune()
    song = mido.MidiFile(type=1, ticks_per_beat=480)
    song.tracks += [melody_track(left, 480, 0, name="Piano"), melody_track([n for n in right if n.start < 8], 480, 1,
                                                                             name="Melody")]
    song.save(tmp_path / "song.mid")
    starts = {}
    for flags in ((), ("--continue",)):
        out = tmp_path / f"out{len(flags)}.mid"
        result = run_riffd("render", str(tmp_path / "song.mid"), "-o", str(out), "--model", "rules", "--seed", "1",
                           *flags)
        assert result.returncode == 0, result.stderr
        melody = read_song(out).tracks[-1]
        starts[flags] = min(n.start for n in melody) / 480
    assert starts[()] == 0.0 and starts[("--continue",)] >= 8.0, starts
    chords = mido.MidiFile(type=1, ticks_per_beat=480)
    chords.tracks.append(melody_track(left, 480, 0, name="Piano"))
    chords.save(tmp_path / "chords.mid")
    refused = run_riffd("render", str(tmp_path / "chords.mid"), "-o", str(tmp_path / "no.mid"), "--continue",
                        "--model", "rules")
    assert refused.returncode == 2 and "no melody track to continue" in refused.stderr
    assert not (tmp_path / "no.mid").exists()


def test_continue_goes_on_from_a_piano_sketchs_tune(tmp_path):
    """One "Piano" track: its tune on top of the chords for 4 bars, then the chords alone
    for 12 (before: "no melody track to continue"). --continue plays from where the tune
    ends, the tune's last note struck alone; the same piano with its tune to the end
    leaves nothing to continue."""
    from riffd.daemon.render import given_melody
    from riffd.models.protocol import MelodyNote
    left, right, _ = piano_with_its_tune()
    chords = left + [MelodyNote(n.start + 32, n.duration, n.pitch, n.velocity) for n in left]
    for name, tune, end in (("sketch", [n for n in right if n.start < 16], 16.0), ("whole", right, 32.0)):
        keys = sorted((chords if name == "sketch" else left) + tune, key=lambda n: (n.start, n.pitch))
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks.append(melody_track(keys, 480, 0, name="Piano"))
        midi.save(tmp_path / f"{name}.mid")
        assert [(n.start, n.pitch) for n in given_melody(read_song(tmp_path / f"{name}.mid"), 0)] == \
            [(n.start, n.pitch) for n in tune]
        result = run_riffd("render", str(tmp_path / f"{name}.mid"), "-o", str(tmp_path / f"{name}-out.mid"),
                           "--continue", "--model", "rules", "--seed", "1")
        assert result.returncode == 0, result.stderr
        melody = read_song(tmp_path / f"{name}-out.mid").tracks[-1]
        if name == "sketch":
            assert min(n.start for n in melody) / 480 == end and max(n.end for n in melody) / 480 > 60
        else:
            assert not melody and f"plays to beat {end:g}, its end: nothing to continue" in result.stdout


def test_render_meter_plays_and_writes_the_file_in_that_meter(tmp_path):
    """`riffd render IN --meter 3/4`: a waltz's chords in a file whose sequencer wrote
    its default 4/4 are played in bars of three (the rules model strikes each bar's
    first beat) and written so: one time signature, 3/4, every other event at its own
    tick. Without the option the file's 4/4 stays, and the melody's bars are of four."""
    waltz_chords(tmp_path / "waltz.mid")
    struck = {}
    for flags in ((), ("--meter", "3/4")):
        out = tmp_path / f"out{len(flags)}.mid"
        result = run_riffd("render", str(tmp_path / "waltz.mid"), "-o", str(out), "--model", "rules", "--seed", "1",
                           "--preset", "folk", *flags)
        assert result.returncode == 0, result.stderr
        song = read_song(out)
        assert song.tracks[1] == read_song(tmp_path / "waltz.mid").tracks[1]  # the chords as they were
        assert song.time_signatures == [(0, 3, 4) if flags else (0, 4, 4)]
        struck[flags] = [struck_bars(song.tracks[-1], size * 480, 48 // size) for size in (3, 4)]
    assert struck[("--meter", "3/4")][0] >= 0.9 and struck[("--meter", "3/4")][1] < 0.5, struck
    assert struck[()][1] >= 0.9, struck
    refused = run_riffd("render", str(tmp_path / "waltz.mid"), "--meter", "3/5")
    assert refused.returncode == 2 and "not a time signature" in refused.stderr


def test_an_oom_pah_chord_is_named_with_its_bass_from_the_bass_s_beat(tmp_path):
    """A waltz's left hand: the bass alone on beat 1, the chord on beats 2 and 3 (as a
    triad, or as two notes). Each bar's chord is named with its bass, from beat 1: G7,
    not the "pah"'s Bdim; C, not C/E or Em. A passing bass that is not the root of the
    chord after it (B, then C E G) leaves that chord as it is."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    chords = {"C": (36, 64, 67, 72), "G7": (31, 59, 62, 65), "F": (41, 69, 72, 77)}
    progression = ["C", "C", "G7", "G7", "C", "C", "F", "C"]
    for pahs, names in ((slice(1, 4), ["C", "G7", "C", "F", "C"]), (slice(1, 3), ["C", "G", "C", "F", "C"])):
        notes = [MelodyNote(bar * 3, 0.9, chords[name][0], 80) for bar, name in enumerate(progression)]
        notes += [MelodyNote(bar * 3 + beat, 0.5, p, 70) for bar, name in enumerate(progression)
                  for beat in (1, 2) for p in chords[name][pahs]]
        midi = mido.MidiFile(type=1, ticks_per_beat=96)
        midi.tracks += [mido.MidiTrack([mido.MetaMessage("time_signature", numerator=3, denominator=4)]),
                        melody_track(notes, 96, 0, name="Accordion")]
        midi.save(tmp_path / "waltz.mid")
        report = render_file(tmp_path / "waltz.mid", tmp_path / "out.mid", load_preset("folk"), load_model("rules"))
        assert report.chords == list(zip([0.0, 6.0, 12.0, 18.0, 21.0], names)), report.chords
    walk = [MelodyNote(0, 2.0, p, 70) for p in (53, 57, 60)] + [MelodyNote(3, 0.9, 47, 80)] + \
        [MelodyNote(4, 2.0, p, 70) for p in (48, 52, 55)]
    midi = mido.MidiFile(type=1, ticks_per_beat=96)
    midi.tracks.append(melody_track(walk, 96, 0, name="Piano"))
    midi.save(tmp_path / "walk.mid")
    report = render_file(tmp_path / "walk.mid", tmp_path / "walk-out.mid", load_preset("folk"), load_model("rules"))
    assert report.chords == [(0.0, "F"), (4.0, "C")]


def test_the_melody_rests_where_the_chords_fall_silent_for_over_two_bars(tmp_path):
    """A band's file: keys and drums, the keys silent in a four-bar break and a four-bar
    drum outro. The melody rests through both, as live riffd rests after two silent
    bars; over a one-bar stop it plays on, and so it does over bars the sustain pedal
    holds (a chord struck short, the pedal down four bars), not with the pedal left out,
    and over a break where a bass line plays on."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    triads = {"C": (48, 52, 55), "Am": (45, 48, 52), "F": (41, 45, 48), "G": (43, 47, 50)}
    preset, model = load_preset("pop"), load_model("rules")

    def render(bars, short=False, pedal=False, bass=False):
        keys = [MelodyNote(bar * 4, 0.5 if short else 3.9, p, 70) for bar, name in enumerate(bars) if name
                for p in triads[name]]
        hits = [MelodyNote(beat, 0.1, 36 if beat % 2 == 0 else 38, 100) for beat in range(4 * len(bars))]
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks += [melody_track(keys, 480, 0, name="Keys"), melody_track(hits, 480, 9, name="Drums")]
        if bass:  # a root a beat under every bar, the silent ones too (the last chord's)
            roots = [triads[name or next(n for n in bars[bar::-1] if n)][0] - 12 for bar, name in enumerate(bars)]
            midi.tracks.append(melody_track([MelodyNote(b, 0.9, roots[b // 4], 90) for b in range(4 * len(bars))],
                                            480, 1, name="Bass"))
        if pedal:  # down just after each chord, up just before the next
            downs = [bar * 4 for bar, name in enumerate(bars) if name] + [4 * len(bars)]
            timed = [(n.start, mido.Message("note_on", note=n.pitch, velocity=70)) for n in keys]
            timed += [(n.end, mido.Message("note_off", note=n.pitch)) for n in keys]
            timed += [(t + 0.02, mido.Message("control_change", control=64, value=127)) for t in downs[:-1]]
            timed += [(t - 0.02, mido.Message("control_change", control=64, value=0)) for t in downs[1:]]
            midi.tracks[0], now = mido.MidiTrack(), 0
            for beat, msg in sorted(timed, key=lambda e: e[0]):
                midi.tracks[0].append(msg.copy(time=round(beat * 480) - now))
                now = round(beat * 480)
        midi.save(tmp_path / "band.mid")
        report = render_file(tmp_path / "band.mid", tmp_path / "out.mid", preset, model, seed=1)
        return [sum(bar * 4 <= n.start < bar * 4 + 4 for n in report.notes) for bar in range(len(bars))], report

    progression = ["C", "Am", "F", "G"]
    per_bar, report = render(progression + [None] * 4 + progression + [None] * 4)
    assert all(per_bar[:4]) and all(per_bar[8:12]), per_bar
    assert not any(per_bar[4:8] + per_bar[12:]), per_bar     # the break and the outro
    assert all(n.end <= 16 or 32 <= n.start and n.end <= 48 for n in report.notes)
    assert [(round(a), round(b)) for a, b in report.rests] == [(16, 32), (48, 63)]  # the drums end on 63.1
    assert "it rests where only drums or nothing play over two bars, beats 15.9-32, 47.9-63.1" in report.summary()
    per_bar, report = render(progression + [None] * 4 + progression, bass=True)
    assert all(per_bar) and not report.rests, per_bar
    per_bar, _ = render(progression + [None] + progression)  # a one-bar stop: played over
    assert all(per_bar), per_bar
    held = ["C", None, None, None, "F", None, None, None]
    assert not any(render(held, short=True)[0][1:4])
    assert all(render(held, short=True, pedal=True)[0]), "the pedal holds the chord"


def test_the_melody_is_as_loud_as_the_chords_around_it(tmp_path):
    """A chord track played softly (velocity 40) for four bars, then hard (110): the
    melody follows, each note by the chords begun in the beat up to it (the preset's
    velocity_follow 1: its velocity 90 moves by their mean velocity minus 80); with
    velocity_follow 0 every note keeps the preset's velocity, give or take its accent."""
    from riffd.bridges.midiwrite import melody_track
    from riffd.models.protocol import MelodyNote
    triads = {"C": (48, 52, 55), "Am": (45, 48, 52), "F": (41, 45, 48), "G": (43, 47, 50)}
    keys = [MelodyNote(bar * 4 + beat, 0.9, p, 40 if bar < 4 else 110)
            for bar, name in enumerate(["C", "Am", "F", "G"] * 2) for beat in (0, 2) for p in triads[name]]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(melody_track(keys, 480, 0, name="Keys"))
    midi.save(tmp_path / "dynamics.mid")
    for follow in (1.0, 0.0):
        preset = load_preset("pop").with_values(velocity_follow=follow)
        notes = render_file(tmp_path / "dynamics.mid", tmp_path / "out.mid", preset, load_model("rules"), seed=1).notes
        soft, loud = [n.velocity for n in notes if n.start < 16], [n.velocity for n in notes if n.start >= 16]
        assert soft and loud
        if follow:
            assert max(soft) < 70 and min(loud) > 100, (soft, loud)
        else:
            assert all(75 <= v <= 105 for v in soft + loud), (soft, loud)
    written = [n.velocity for n in read_song(tmp_path / "out.mid").tracks[-1]]
    assert written == [n.velocity for n in notes]  # the file holds what the report says


def test_a_riff_of_power_chords_is_named_in_its_key(tmp_path):
    """A5 G5 F5 G5, a bar each, twice, as bare fifths (a guitar's power chords): named in
    A minor from the first bar, Am G F G, the file read ahead for the first chord's
    third. Before, every bare fifth was major: A G F G, and the melody played C sharp."""
    from riffd.models.protocol import MelodyNote
    roots = [45, 43, 41, 43] * 2
    riff = [MelodyNote(bar * 4, 4.0, p, 90) for bar, root in enumerate(roots) for p in (root, root + 7, root + 12)]
    read_song_of(tmp_path, [riff])
    report = render_file(tmp_path / "parts.mid", tmp_path / "out.mid", load_preset("pop"), load_model("rules"), seed=1)
    assert [name for _, name in report.chords] == ["Am", "G", "F", "G"] * 2
    assert not [n for n in report.notes if n.pitch % 12 == 1 and any(b <= n.start < b + 4 for b in (0, 16))]


def test_render_takes_a_json_request_as_the_watched_folder_does(tmp_path):
    """`riffd render REQUEST.json` (before: "not a readable MIDI file"): the request's
    chords as a lead sheet writes them, its meter, tempo, preset and seed; a bad request,
    or an option only a .mid takes, exits 2 with one line and writes nothing."""
    import json
    request = tmp_path / "autumn.json"
    request.write_text(json.dumps({"chords": "Cm7 | F7 | Bbmaj7 | G13#9", "bars": 8, "meter": "3/4",
                                   "tempo": 100, "preset": "folk", "seed": 3}))
    result = run_riffd("render", str(request), "--model", "rules", "--seed", "9")
    assert result.returncode == 0, result.stderr
    assert "Cm7 F7 Bbmaj7 G13#9" in result.stdout and "preset folk, model rules, seed 3" in result.stdout
    song = read_song(tmp_path / "autumn-riffd.mid")
    assert song.time_signatures == [(0, 3, 4)] and round(song.tempo) == 100
    melody = song.tracks[-1]
    assert melody and max(n.end for n in melody) <= 8 * 3 * song.ppqn
    assert struck_bars(melody, 3 * song.ppqn, 8) >= 0.75  # bars of three: the rules model strikes their first beat
    again = run_riffd("render", str(request), "-o", str(tmp_path / "again.mid"), "--model", "rules")
    assert (tmp_path / "again.mid").read_bytes() == (tmp_path / "autumn-riffd.mid").read_bytes()  # the request's seed
    (tmp_path / "bad.json").write_text(json.dumps({"chords": "Am F", "model": "markov"}))
    for args, reason in ((("bad.json",), "(unknown: 'model')"),
                         (("autumn.json", "--meter", "4/4"), "--meter is for a .mid file"),
                         (("autumn.json", "--continue", "--chord-track", "1"), "--chord-track and --continue are")):
        out = tmp_path / "out.mid"
        refused = run_riffd("render", str(tmp_path / args[0]), "-o", str(out), *args[1:])
        assert refused.returncode == 2 and reason in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
        assert not out.exists()
    assert again.returncode == 0


def test_a_chord_restated_each_bar_is_one_change_in_the_report(tmp_path):
    """A request restates its chord each bar (before, `--chords Am --bars 8` reported "8
    chord changes (Am Am Am ...)"): the report and its piano roll name the changes."""
    vamp = run_riffd("render", "--chords", "Am", "--bars", "8", "--model", "rules", "-o", str(tmp_path / "a.mid"))
    assert vamp.returncode == 0 and "1 chord change (Am);" in vamp.stdout, vamp.stdout + vamp.stderr
    turn = run_riffd("render", "--chords", "Am | Am F", "--bars", "4", "--model", "rules",
                     "-o", str(tmp_path / "b.mid"))
    assert turn.returncode == 0 and "4 chord changes (Am F Am F);" in turn.stdout, turn.stdout + turn.stderr


def test_render_chords_plays_a_lead_sheet_line_without_a_file(tmp_path):
    """`riffd render --chords "Dm7 G7 | Cmaj7" --bars 4 --meter 3/4`: the names as
    written, repeated to fill the bars, in that meter, the same as a request of them;
    IN and --chords together (or neither), and --bars without --chords, are refused."""
    import json
    result = run_riffd("render", "--chords", "Dm7 G7 | Cmaj7", "--bars", "4", "--meter", "3/4", "--model", "rules",
                       "--seed", "5", "-o", str(tmp_path / "line.mid"))
    assert result.returncode == 0, result.stderr
    assert "6 chord changes (Dm7 G7 Cmaj7 Dm7 G7 Cmaj7)" in result.stdout
    song = read_song(tmp_path / "line.mid")
    assert song.time_signatures == [(0, 3, 4)] and song.tracks[-1]
    (tmp_path / "line.json").write_text(json.dumps({"chords": "Dm7 G7 | Cmaj7", "bars": 4, "meter": "3/4",
                                                      "seed": 5}))
    same = run_riffd("render", str(tmp_path / "line.json"), "--model", "rules", "-o", str(tmp_path / "req.mid"))
    assert same.returncode == 0 and (tmp_path / "req.mid").read_bytes() == (tmp_path / "line.mid").read_bytes()
    for args, reason in ((("--chords", "Am", str(tmp_path / "line.json")), "one of them"), ((), "one of them"),
                         ((str(tmp_path / "line.json"), "--bars", "2"), "--bars is for --chords"),
                         (("--chords", "Am Xq"), "not a chord name: 'Xq'")):
        refused = run_riffd("render", *args, "-o", str(tmp_path / "no.mid"))
        assert refused.returncode == 2 and reason in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
    assert not (tmp_path / "no.mid").exists()


def test_a_requests_chords_are_voiced_under_its_melody(tmp_path):
    """A request's chords: a bass in C2-B2 and the chord in the octave above it, so that
    the melody sounds over them (before, voiced from C3, the chords reached G5 and half
    the melody's notes began under their top note)."""
    result = run_riffd("render", "--chords", "C G | Am F | Dm7 G7 | Cmaj7", "--bars", "16", "--model", "rules",
                       "--seed", "2", "-o", str(tmp_path / "out.mid"))
    assert result.returncode == 0, result.stderr
    song = read_song(tmp_path / "out.mid")
    chords, melody = song.tracks[1], song.tracks[-1]
    for start in sorted({n.start for n in chords}):
        block = sorted(n.pitch for n in chords if n.start == start)
        assert 36 <= block[0] <= 47 and block[-1] <= block[0] + 24, block
    under = [n for n in melody if n.pitch < max(c.pitch for c in chords if c.start <= n.start < c.end)]
    assert len(under) <= 0.1 * len(melody), (len(under), len(melody))
