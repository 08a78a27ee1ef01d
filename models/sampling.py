"""Sampling shared by the neural backends (mlx and onnx): the same kernel on their logits.

A token is drawn from the ids the REMI grammar and the register allow at that point (so
every output decodes to valid notes), after a bias (chord tones) is added to the logits:
temperature scaling, then nucleus (top-p) sampling (Holtzman et al., "The Curious Case
of Neural Text Degeneration", ICLR 2020), drawn by the Cython kernel
``cython_ext/sampler.py``. ``StreamState`` is where a stream stands in
that grammar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from riffd.cython_ext import kernel

from .tokens import Vocab

# Added to the logits of chord tones on strong beats, per unit of the preset's
# chord_tone_bias (0-1): at 1.0 a chord tone is e^3 = 20x likelier than before.
CHORD_TONE_NATS = 3.0
_SAMPLER = kernel("sampler")
_NO_BIAS = np.zeros(0)


def sample(logits: np.ndarray, allowed: np.ndarray, rng: np.random.Generator,
           temperature: float = 1.0, top_p: float = 1.0, bias: np.ndarray | None = None) -> int:
    """One id out of ``allowed`` (int array of ids, non-empty), drawn by the sampling
    kernel (riffd.cython_ext.sampler.draw) with one uniform number from ``rng``.

    ``logits``: shape (vocab,); ``bias``: shape (len(allowed),), added before the
    temperature. A temperature at or below 0.05 takes the most likely id (and draws
    nothing from ``rng``).
    """
    allowed = np.ascontiguousarray(allowed, dtype=np.int64)
    greedy = temperature <= _SAMPLER.GREEDY_TEMPERATURE or len(allowed) == 1
    return int(_SAMPLER.draw(np.ascontiguousarray(logits, dtype=np.float32), allowed,
                             _NO_BIAS if bias is None else np.ascontiguousarray(bias, dtype=np.float64),
                             float(temperature), float(top_p), 0.0 if greedy else rng.random()))


def pitch_bias(pitches: np.ndarray, chord, on_beat: bool, previous: int | None, preset, calibration,
               recent: list[int] | None = None) -> np.ndarray:
    """Logit bias (nats) for ``pitches`` (MIDI numbers, shape (n,)) over ``chord`` (a
    riffd.music Chord or None): the preset's ``chord_tone_bias`` on the chord's tones where
    ``on_beat`` (a beat or a change), ``repeated_note_penalty`` off ``previous`` (MIDI or
    None), and the checkpoint's ``calibration`` (models/calibration.py; None: none) after
    ``previous`` in a line whose ``recent`` pitches are given (MIDI, oldest first, or None)."""
    tones = np.zeros(12)
    if chord is not None and on_beat:
        tones[list(chord.tones)] = CHORD_TONE_NATS * preset.chord_tone_bias
    bias = tones[pitches % 12]  # np.isin cost 80 us a call here
    bias = bias - preset.repeated_note_penalty * (pitches == (-1 if previous is None else previous))
    return bias if calibration is None else bias + calibration.bias(pitches, previous, chord, recent)


@dataclass(frozen=True)
class StreamState:
    """Where the stream is: ``bar`` index (-1 before the first), last ``pos`` in the bar (-1
    none), the beat and id of the last chord reached, and what the grammar ``expect``s next."""
    bar: int = -1
    pos: int = -1
    chord_beat: float = -math.inf
    expect: str = "event"  # event | pitch | answer (a pitch, or a rest: after a Chord) | duration
    chord_id: int = -1


@dataclass(frozen=True)
class Groups:
    """Token ids of riffd's REMI vocabulary by kind, for building grammar masks. Read off
    the REMI kernel's lookup tables (``RemiTokenizer.tables``): one table of ids."""
    bar: int
    bos: int
    eos: int
    positions: np.ndarray     # shape (positions,): id of Position_q
    pitches: np.ndarray       # shape (128,): id of Pitch_p, -1 outside the vocabulary's range
    pitch_of: np.ndarray      # shape (vocab,): the MIDI pitch of a Pitch id, -1 for other ids
    durations: np.ndarray     # ids of the Duration bins, in bin order
    duration_beats: np.ndarray  # their lengths in beats of the meter's denominator
    time_signatures: dict     # (num, den) -> id of TimeSig_num/den

    @classmethod
    def of(cls, tables, vocab: Vocab) -> Groups:
        """From a kernel ``Tables`` (riffd.cython_ext.remi) and its vocabulary."""
        pitches = np.asarray(tables.pitch_ids, dtype=np.int64)
        pitch_of = np.full(len(vocab), -1, dtype=np.int64)
        pitch_of[pitches[pitches >= 0]] = np.nonzero(pitches >= 0)[0]
        return cls(
            bar=tables.bar_id, bos=vocab.ids["BOS_None"], eos=vocab.ids["EOS_None"],
            positions=np.asarray(tables.pos_ids, dtype=np.int64),
            pitches=pitches,
            pitch_of=pitch_of,
            durations=np.asarray(tables.dur_ids, dtype=np.int64),
            duration_beats=np.asarray(tables.dur_ticks, dtype=np.float64) / tables.P,
            time_signatures=dict(tables.ts_ids),
        )
