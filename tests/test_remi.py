"""The REMI tokenizer: equal to miditok on real corpus melodies, twin == Cython, chords
from riffd's recognizer, incremental encoding, tolerant decoding."""
import random

import mido
import numpy as np
import pytest
import symusic

from riffd.bridges.midifile import read_song
from riffd.cython_ext import is_compiled, twin
from riffd.music.chords import recognize
from riffd.bridges.midifile import block_chords
from riffd.models.remi import Notes, RemiTokenizer, chord_events
from riffd.models.training.testset import corpus_melody_files
from riffd.models.tokens import miditok_tokenizer


@pytest.fixture(scope="module")
def tok():
    return RemiTokenizer()


@pytest.fixture(scope="module")
def reference():
    return miditok_tokenizer()


@pytest.fixture(scope="module")
def melody_files():
    return corpus_melody_files()


def melody_stream(reference, path):
    chord_ids = {i for t, i in reference.vocab.items() if t.startswith("Chord_")}
    return [i for seq in reference.encode(symusic.Score(str(path))) for i in seq.ids if i not in chord_ids]


def test_kernel_is_compiled(tok):
    assert is_compiled(tok.k), "make build did not compile cython_ext/remi.py"


def test_ids_equal_miditok_on_200_corpus_melodies(tok, reference, melody_files):
    identical, rejected = 0, []
    for path in melody_files:
        song = read_song(path)
        try:
            ids = tok.encode_song(song, 1)
        except ValueError as exc:  # only meters of different beat units are refused
            assert "beat unit" in str(exc)
            # and only where the file really mixes them (a 3/4 then 6/8 tune, say)
            assert len({den for _, _, den in song.time_signatures}) > 1, path.name
            rejected.append(path.name)
            continue
        assert list(ids) == melody_stream(reference, path), path.name
        identical += 1
        # decode(encode(x)) gives back the notes at the tokenizer's resolution
        quantized = tok.quantized(Notes.of(song.tracks[1]), song.ppqn, song.time_signatures)
        decoded = tok.decode_notes(ids)
        for field in ("onsets", "durations", "pitches", "velocities"):
            assert np.array_equal(getattr(quantized, field), getattr(decoded, field)), (path.name, field)
    assert identical >= 200, f"only {identical} files compared ({len(rejected)} refused)"


def random_midi(rng, path):
    """A type-1 file with random resolution, meters, tempos and monophonic-ish notes."""
    ppqn = rng.choice([12, 96, 120, 384, 480, 960])
    meters = rng.choice([[(4, 4)], [(3, 4)], [(6, 8)], [(2, 2)], [(3, 4), (4, 4)], [(12, 8)], [(7, 8)]])
    meta, t = [], 0
    for n, d in meters:
        meta.append((t, mido.MetaMessage("time_signature", numerator=n, denominator=d)))
        t += rng.randint(1, 6) * ppqn * 4 * n // d + (rng.randint(1, ppqn) if rng.random() < 0.2 else 0)
    for _ in range(rng.randint(0, 2)):
        meta.append((rng.randint(0, ppqn * 8), mido.MetaMessage("set_tempo", tempo=rng.randint(200000, 1500000))))
    notes, t = [], 0
    for _ in range(rng.randint(1, 80)):
        t += rng.choice([0, 1, ppqn // 4, ppqn // 3, ppqn // 2, ppqn, rng.randint(0, 3 * ppqn)])
        d = max(1, rng.choice([1, ppqn // 4, ppqn // 2, ppqn, 2 * ppqn, rng.randint(1, 20 * ppqn)]))
        p = rng.randint(15, 115)
        if not any(q == p and a <= t + d and t <= b for a, b, q, _ in notes):  # readers pair overlaps differently
            notes.append((t, t + d, p, rng.randint(1, 127)))
        if rng.random() < 0.7:
            t += d
    msgs = sorted([(s, 1, mido.Message("note_on", note=p, velocity=v)) for s, e, p, v in notes]
                  + [(e, 0, mido.Message("note_off", note=p)) for s, e, p, v in notes], key=lambda m: m[:2])
    midi = mido.MidiFile(type=1, ticks_per_beat=ppqn)
    for events in (sorted(meta, key=lambda e: e[0]), [(a, m) for a, _, m in msgs]):
        track, last = mido.MidiTrack(), 0
        for tick, msg in events:
            track.append(msg.copy(time=tick - last))
            last = tick
        midi.tracks.append(track)
    midi.save(path)


def test_ids_equal_miditok_on_random_files(tok, reference, tmp_path):
    rng = random.Random(7)
    compared = 0
    for k in range(150):
        path = tmp_path / f"r{k}.mid"
        random_midi(rng, path)
        try:
            ids = tok.encode_song(read_song(path), 1)
        except ValueError:
            continue
        assert list(ids) == melody_stream(reference, path), path.name
        compared += 1
    assert compared > 100


def test_twin_agrees_with_cython(tok, melody_files, chorale_piece):
    python = RemiTokenizer(tok.vocab, backend=twin("remi"))
    assert not is_compiled(python.k)
    for path in melody_files[::4]:
        song = read_song(path)
        try:
            expected = tok.encode_song(song, 1)
        except ValueError:
            continue
        assert np.array_equal(python.encode_song(song, 1), expected), path.name
        assert python.decode(expected) == tok.decode(expected)
    midi = chorale_piece.to_midi(ppqn=480)
    song_path = melody_files[0].parent.parent / "twin-chorale.mid"
    midi.save(song_path)
    song = read_song(song_path)
    assert np.array_equal(python.encode_song(song, 2, chord_track=1), tok.encode_song(song, 2, chord_track=1))


def test_chord_tokens_come_from_riffd_recognizer_on_a_chorale(tok, reference, chorale_piece, tmp_path):
    path = tmp_path / "chorale.mid"
    chorale_piece.to_midi(ppqn=480).save(path)
    # miditok's own detector finds no chord in the lower voices (spread, inverted)...
    chord_track = reference.encode(symusic.Score(str(path)))[1]
    assert not [t for t in chord_track.tokens if t.startswith("Chord_")]
    # ...riffd names them, inversions included, at the onsets where they change
    song = read_song(path)
    ids = tok.encode_song(song, 2, chord_track=1)
    chords = [e for e in tok.decode(ids) if e[0] == "chord"]
    expected = chord_events(block_chords(song.tracks[1]), song.ppqn)
    assert len(chords) >= 0.8 * len({(r, q) for _, r, q in expected}) and len(chords) > 20
    tpq = tok.pos_per_beat  # 4/4: tokenizer ticks per quarter
    by_tick = {round(t * tpq / song.ppqn): (r, q) for t, r, q in expected}
    for _, tick, root, quality in chords:
        assert by_tick[tick] == (root, quality)
    inverted = [b for b in block_chords(song.tracks[1]) if (c := recognize(b[2])) and c.bass != c.root]
    assert inverted, "the chorale should contain inversions"


def test_incremental_stream_equals_batch(tok):
    rng = np.random.default_rng(3)
    tpq = tok.pos_per_beat  # 4/4: one tick per position
    onsets = np.cumsum(rng.choice([0, 3, 6, 12, 24], 60)).astype(np.int64)
    notes = Notes(onsets, rng.choice([3, 6, 12, 30], 60).astype(np.int64),
                  rng.integers(50, 90, 60).astype(np.int64), rng.integers(40, 120, 60).astype(np.int64))
    chords = [(int(t), int(rng.integers(12)), int(rng.integers(14))) for t in range(0, int(onsets[-1]), 48)]
    batch = tok.encode(notes, tpq, [(0, 4, 4)], [(0, 500000)], chords)
    q = tok.quantized(notes, tpq, [(0, 4, 4)])
    stream, got = tok.stream(4, 4), []
    stream.time_signature(0, 4, 4)
    stream.token_at(0, tok.tables.tempo_id(500000))
    got.extend(stream.take())
    events = sorted([(t, 0, r, qu) for t, r, qu in chords] + [(int(t), 1, i, 0) for i, t in enumerate(q.onsets)])
    for tick, kind, a, b in events:
        if kind == 0:
            stream.chord(tick, a, b)
        else:
            stream.note(tick, int(q.pitches[a]), int(q.velocities[a]), int(q.durations[a]))
        got.extend(stream.take())  # only the new ids each time
    assert got == list(batch)
    with pytest.raises(ValueError):
        stream.note(0, 60, 80, 12)  # before the bar being written


def test_decoder_turns_any_id_sequence_into_valid_notes(tok):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(tok.vocab), 5000)
    lo, hi = tok.vocab.data["pitch_range"]
    for event in tok.decode(ids):
        if event[0] == "note":
            _, tick, duration, pitch, velocity = event
            assert tick >= 0 and duration > 0 and lo <= pitch <= hi and 1 <= velocity <= 127


def test_token_level_stream_twin_agrees_with_cython_through_rollbacks(tok):
    """The calls the neural model writes its live stream with (position, bar,
    pitch_velocity, duration, token_at, state/restore) give the same ids compiled and
    run by the interpreter, and a restore forgets exactly what came after its state."""
    python = RemiTokenizer(tok.vocab, backend=twin("remi"))
    rng = np.random.default_rng(5)
    streams = [t.stream(4, 4) for t in (tok, python)]
    for s in streams:
        s.time_signature(0, 4, 4)
        s.token_at(0, tok.tables.tempo_id(500000))
    saved, tick, restored = [], 0, 0
    for _ in range(300):
        action = rng.integers(8)
        if action == 0 and saved:  # a rollback to one of the last few points, as live
            point = saved[-int(rng.integers(1, min(6, len(saved)) + 1))]
            for s, state in zip(streams, point[1]):
                s.restore(state)
            tick = point[0]
            saved = [p for p in saved if p[1][0][0] <= point[1][0][0]]
            restored += 1
            continue
        if action == 1 and tick % 48 != 47:
            for s in streams:
                s.bar()
            tick = (tick // 48 + 1) * 48
        else:
            tick += int(rng.integers(1, 12))
            root, quality, pitch, vel, dur = (int(rng.integers(n)) for n in (12, 14, 50, 8, 20))
            for s in streams:
                s.position(tick)
                if action == 2:
                    s.chord(tick, root, quality)
                s.pitch_velocity(40 + pitch, vel)
                s.duration(dur)
        saved.append((tick, [s.state() for s in streams]))
        assert np.array_equal(streams[0].ids(), streams[1].ids())
    assert restored > 20 and len(streams[0].ids()) > 200
    # a restore really forgets: writing again from a saved state gives the same ids as before
    point_ids = streams[0].ids()
    state = streams[0].state()
    streams[0].position(tick + 1)
    streams[0].restore(state)
    assert np.array_equal(streams[0].ids(), point_ids)


def performance_file(source, out, seed):
    """A corpus melody played like a person records it (480 PPQN): onsets off the grid,
    legato that overlaps a repeated pitch (the next note-on comes before the note-off),
    a doubled note-on, and a few notes never turned off."""
    rng = random.Random(seed)
    midi = mido.MidiFile(source)
    scale = 480 // midi.ticks_per_beat if 480 % midi.ticks_per_beat == 0 else 1
    out_midi = mido.MidiFile(type=1, ticks_per_beat=midi.ticks_per_beat * scale)
    for track in midi.tracks:
        events, tick = [], 0
        for msg in track:
            tick += msg.time
            events.append([tick * scale, msg])
        notes = [e for e in events if e[1].type in ("note_on", "note_off")]
        for e in notes:
            if e[1].type == "note_on" and e[1].velocity > 0:
                e[0] = max(0, e[0] + rng.randint(-15, 15))
            elif rng.random() < 0.3:
                e[0] += rng.randint(60, 400)              # legato: held into the next note
        ons = [e for e in notes if e[1].type == "note_on" and e[1].velocity > 0]
        for e in rng.sample(ons, min(2, len(ons))):       # a doubled strike
            events.append([e[0], e[1].copy()])
        offs = [e for e in notes if not (e[1].type == "note_on" and e[1].velocity > 0)]
        for e in rng.sample(offs, min(2, len(offs))):     # never turned off
            events.remove(e)
        if ons:                                           # a note-on and note-off at one tick
            at, msg = ons[len(ons) // 2][0] + 7, ons[len(ons) // 2][1]
            events += [[at, mido.Message("note_on", channel=msg.channel, note=msg.note, velocity=70)],
                       [at, mido.Message("note_off", channel=msg.channel, note=msg.note, velocity=0)]]
        events = sorted((e for e in events if e[1].type != "end_of_track"), key=lambda e: e[0])
        new, now = mido.MidiTrack(), 0
        for t, msg in events:
            new.append(msg.copy(time=t - now))
            now = t
        new.append(mido.MetaMessage("end_of_track", time=0))
        out_midi.tracks.append(new)
    out_midi.save(out)


def test_ids_equal_miditok_on_performance_files(tok, reference, melody_files, tmp_path):
    """Overlapping notes of one pitch and notes never turned off: read and encoded as
    miditok (through symusic) does."""
    compared = 0
    for i, source in enumerate(melody_files[:60]):
        path = tmp_path / f"performed-{i}.mid"
        performance_file(source, path, seed=i)
        song = read_song(path)
        try:
            ids = tok.encode_song(song, 1)
        except ValueError:
            continue
        assert list(ids) == melody_stream(reference, path), path.name
        compared += 1
    assert compared >= 50


def test_bench_tokenize_compares_the_melody_track_of_multitrack_files(chorale_piece, tmp_path):
    """A chorale with its chord track and its melody: the melody track, alone, is what
    miditok encodes; riffd's ids equal those."""
    import json

    from conftest import run_riffd
    path = tmp_path / "chorale.mid"
    chorale_piece.to_midi().save(path)
    result = run_riffd("bench", "tokenize", str(path), "--repeat", "1", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["files"] == 1 and figures["identical_to_miditok"] == 1
    assert figures["notes"] == len(chorale_piece.melody)
