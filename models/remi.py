"""riffd's REMI tokenizer: melody notes and chords <-> token ids, through the Cython kernel.

Chord tokens come from riffd's own recognizer (riffd.music.chords), the one live capture
uses, applied to the chord part; Pitch/Velocity/Duration from the melody. The ids equal
miditok REMI's for the same notes (tests/test_remi.py proves it on corpus files).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riffd.bridges.midifile import block_chords
from riffd.cython_ext import kernel
from riffd.music.chords import MIDITOK_ROOTS, QUALITIES, recognize

from .tokens import Vocab

QUALITY_INDEX = {q: i for i, q in enumerate(QUALITIES)}  # kernel's quality index; order = Vocab's


@dataclass
class Notes:
    """Notes as arrays: ``onsets`` and ``durations`` in ticks, ``pitches`` (MIDI 0-127),
    ``velocities`` (1-127); all int64, shape (n,)."""
    onsets: np.ndarray
    durations: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray

    @classmethod
    def of(cls, notes, ppqn: int | None = None) -> Notes:
        """From objects with start/end/pitch/velocity in ticks (TrackNote), or with
        start/duration in beats (MelodyNote) when ``ppqn`` is given."""
        notes = list(notes)
        if ppqn is None:
            on = [n.start for n in notes]
            du = [n.end - n.start for n in notes]
        else:
            on = [round(n.start * ppqn) for n in notes]
            du = [round(n.end * ppqn) - round(n.start * ppqn) for n in notes]
        return cls(np.array(on, dtype=np.int64), np.array(du, dtype=np.int64),
                   np.array([n.pitch for n in notes], dtype=np.int64),
                   np.array([n.velocity for n in notes], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.onsets)


def chord_events(blocks, ppqn: int) -> list[tuple[int, int, int]]:
    """(tick, root, quality index) for block chords given as (start, end, pitches) with
    start in ticks (``ppqn`` per quarter). Unrecognized sets (fewer than three pitch
    classes, say) carry no token; the chord before goes on."""
    events = []
    for start, _end, pitches in blocks:
        chord = recognize(pitches)
        if chord is not None:
            events.append((int(start), chord.root, QUALITY_INDEX[chord.quality]))
    return events


class RemiTokenizer:
    """Encode and decode riffd's REMI streams. ``backend``: a kernel module (the
    compiled one by default; ``riffd.cython_ext.twin("remi")`` for the Python twin)."""

    def __init__(self, vocab: Vocab | None = None, backend=None):
        self.vocab = vocab or Vocab.default()
        self.k = backend or kernel("remi")
        self.tables = self.k.Tables(self.vocab.data, MIDITOK_ROOTS)
        self.d = kernel("remi_decode")

    @property
    def pos_per_beat(self) -> int:
        return self.vocab.data["pos_per_beat"]

    def encode(self, notes: Notes, ppqn: int, time_signatures=(), tempos=(), chords=()) -> np.ndarray:
        """Token ids (int32, shape (n,)). ``time_signatures``: (tick, num, den);
        ``tempos``: (tick, microseconds per quarter); ``chords``: (tick, root, quality
        index); all ticks at ``ppqn``. Raises UnsupportedMeter (a ValueError)."""
        return self.k.encode(self.tables, notes.onsets, notes.durations, notes.pitches,
                             notes.velocities, ppqn, time_signatures, tempos, chords)

    def encode_song(self, song, melody: int, chord_track: int | None = None) -> np.ndarray:
        """Ids of a file read by riffd.bridges.midifile.read_song: track ``melody``, with
        chords recognized in ``chord_track`` at each onset."""
        chords = ()
        if chord_track is not None:
            chords = chord_events(block_chords(song.tracks[chord_track]), song.ppqn)
        return self.encode(Notes.of(song.tracks[melody]), song.ppqn, song.time_signatures,
                           song.tempos, chords)

    def quantized(self, notes: Notes, ppqn: int, time_signatures=()) -> Notes:
        """The notes as the encoder sees them: at tokenizer ticks, snapped to the
        vocabulary's bins, out-of-range pitches and duplicates dropped."""
        tpq, _ = self.k.prepare_meter(self.tables, time_signatures, ppqn)
        keys = self.k.prepare_notes(self.tables, notes.onsets, notes.durations, notes.pitches,
                                    notes.velocities, ppqn, tpq)
        ticks, pitches, dur_bins, vel_bins = self.k.unpack(keys)
        P = self.pos_per_beat
        durs = np.array([(b * r + p) * P // r for b, p, r in self.vocab.data["durations"]], dtype=np.int64)[dur_bins]
        vels = np.array(self.vocab.data["velocities"], dtype=np.int64)[vel_bins]
        return Notes(ticks, durs, pitches, vels)

    def decode(self, ids) -> list[tuple]:
        """Events of an id sequence: ("note", tick, duration, pitch, velocity),
        ("chord", tick, root, quality index), ("timesig", tick, num, den),
        ("tempo", tick, qpm); ticks at ``pos_per_beat`` per beat."""
        return self.d.decode(self.tables, np.asarray(ids, dtype=np.int64).tolist())

    def decode_notes(self, ids) -> Notes:
        """Only the notes of ``decode``, as arrays."""
        notes = [e[1:] for e in self.decode(ids) if e[0] == "note"]
        cols = list(zip(*notes)) if notes else [(), (), (), ()]
        return Notes(*(np.array(c, dtype=np.int64) for c in cols))

    def stream(self, num: int = 4, den: int = 4):
        """An incremental encoder (kernel ``Stream``) for one meter; feed it in
        tokenizer ticks (``tpq = pos_per_beat * den / 4`` per quarter note)."""
        tpq = self.pos_per_beat * den // 4
        return self.k.Stream(self.tables, tpq, num, den)

    def decoder(self):
        """An incremental decoder (kernel ``remi_decode.Decoder``)."""
        return self.d.Decoder(self.tables)

