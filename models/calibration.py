"""A checkpoint's sampling calibration: logit corrections (nats) for a pitch by its
interval from the previous pitch, by its pitch class above the chord's root (chord
tones and other notes apart, so that the share of chord tones is kept too) and, where
fitted, by its distance from the melody's centre (the mean of its last ``CENTRE_NOTES``
pitches: a line's tessitura, which a walk of well-shared intervals can leave) and by how
often its pitch class sounded in the last ``MEMORY_NOTES`` notes (a line's mode, which
chord-relative shares cannot see); and, where fitted, logit corrections for each
Duration bin (the rhythm, which the pitch tables do not touch). Kept in the checkpoint
folder as ``calibration.json`` and added to the pitch (and Duration) logits by the neural
model (models/neural.py) before temperature and nucleus.

Why: teacher-forced on real melodies, riffd's models give the intervals of those
melodies; along their own streams they drift to fewer steps and more thirds (exposure
bias: docs/measured.md, "Where the melodies drift"), and riff-chorale favours the chord's root over
its third more than Bach did.
``riffd calibrate`` (models/evaluation/calibrate.py) fits the tables on a dataset's
training split, so that what the model plays there keeps those shares; the test split
judges it. A checkpoint without the file plays uncorrected.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILE = "calibration.json"
MAX_INTERVAL = 12  # semitones; larger intervals share the outermost bins, as in the evaluation's histogram
MAX_NATS = 3.0  # no correction moves a pitch's odds by more than e^3 = 20x either way
# The centre is the mean of this many notes before (about 16 bars of a hymn tune). Chosen
# on the validation split of a Palestrina fine-tune: 8 / 24 / 64 notes / the whole line
# were told from real 0.861 / 0.845 / 0.775 / 0.782 (no centre table: 0.920).
CENTRE_NOTES = 64
# A pitch class's count among this many notes before: 0, 1, ..., MEMORY_BINS - 1 or more.
# Chosen on the same validation split: 8 / 16 / 48 notes told from real 0.744 / 0.694 /
# 0.755 (with the centre table, without this one: 0.775).
MEMORY_NOTES = 16
MEMORY_BINS = 6
RECENT_NOTES = max(CENTRE_NOTES, MEMORY_NOTES)  # what ``Calibration.bias`` reads of the line


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Calibration:
    """``interval``: shape (25,), nats for intervals -12..+12 semitones (clipped);
    ``chord_pc``: shape (2, 12), nats for pitch classes 0-11 above the chord's root, row 0
    for pitches outside the chord, row 1 for its tones;
    ``meta``: how it was fitted (data, preset, pieces, iterations, shares before and after);
    ``centre``: shape (25,), nats for -12..+12 semitones (clipped) from the centre, rounded;
    ``memory``: shape (MEMORY_BINS,), nats by the pitch class's count among the last
    MEMORY_NOTES notes (the last bin: that count or more);
    ``duration``: shape (Duration bins of the vocabulary,), nats per bin, or shape (0,).
    Zeros (or empty): a table not used (files written before a table have none of it)."""
    interval: np.ndarray
    chord_pc: np.ndarray
    meta: dict = field(default_factory=dict)
    centre: np.ndarray = field(default_factory=lambda: np.zeros(2 * MAX_INTERVAL + 1))
    memory: np.ndarray = field(default_factory=lambda: np.zeros(MEMORY_BINS))
    duration: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def zero(cls) -> Calibration:
        return cls(np.zeros(2 * MAX_INTERVAL + 1), np.zeros((2, 12)))

    @property
    def uses_centre(self) -> bool:
        return bool(self.centre.any())

    @property
    def uses_memory(self) -> bool:
        return bool(self.memory.any())

    @property
    def uses_duration(self) -> bool:
        return bool(self.duration.any())

    def duration_bias(self, bins: int) -> np.ndarray | None:
        """Nats for each of a vocabulary's ``bins`` Duration bins, or None when unused.
        Raises CalibrationError when the table has another size (another vocabulary's)."""
        if not self.uses_duration:
            return None
        if self.duration.shape != (bins,):
            raise CalibrationError(f"{FILE}: 'duration' holds {self.duration.size} numbers, the vocabulary "
                                   f"has {bins} Duration bins")
        return self.duration

    @property
    def reads_line(self) -> bool:
        """Whether ``bias`` reads the line's ``recent`` pitches (a centre or memory table)."""
        return self.uses_centre or self.uses_memory

    @classmethod
    def load(cls, folder: str | Path) -> Calibration | None:
        """The calibration in checkpoint ``folder``, or None when it has none. Raises
        CalibrationError for a file that is not two tables of the right sizes."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            interval = np.asarray(data["interval"], dtype=np.float64)
            chord_pc = np.asarray(data["chord_pc"], dtype=np.float64)
            centre = np.asarray(data.get("centre", [0.0] * (2 * MAX_INTERVAL + 1)), dtype=np.float64)
            memory = np.asarray(data.get("memory", [0.0] * MEMORY_BINS), dtype=np.float64)
            duration = np.asarray(data.get("duration", []), dtype=np.float64)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CalibrationError(f"{path}: not a calibration ({type(exc).__name__}: {exc})") from None
        tables = (interval, chord_pc, centre, memory, duration)
        if interval.shape != (2 * MAX_INTERVAL + 1,) or chord_pc.shape != (2, 12) or centre.shape != interval.shape \
                or memory.shape != (MEMORY_BINS,) or duration.ndim != 1 \
                or not all(np.isfinite(t).all() for t in tables):
            raise CalibrationError(f"{path}: 'interval' and 'centre' must hold 25 numbers, 'chord_pc' two rows of 12, "
                                   f"'memory' {MEMORY_BINS} and 'duration' one list")
        interval, chord_pc, centre, memory, duration = (np.clip(t, -MAX_NATS, MAX_NATS) for t in tables)
        return cls(interval, chord_pc, data.get("meta", {}), centre, memory, duration)

    def save(self, folder: str | Path) -> Path:
        """Write ``calibration.json`` into ``folder`` (a temporary name, then renamed)."""
        path = Path(folder) / FILE
        tmp = path.with_name(f".{FILE}.{os.getpid()}.part")
        tmp.write_text(json.dumps({"interval": [round(float(x), 4) for x in self.interval],
                                   "chord_pc": [[round(float(x), 4) for x in row] for row in self.chord_pc],
                                   **({"centre": [round(float(x), 4) for x in self.centre]} if self.uses_centre else {}),
                                   **({"memory": [round(float(x), 4) for x in self.memory]} if self.uses_memory else {}),
                                   **({"duration": [round(float(x), 4) for x in self.duration]}
                                      if self.uses_duration else {}),
                                   "meta": self.meta}, indent=1) + "\n")
        os.replace(tmp, path)
        return path

    def bias(self, pitches: np.ndarray, previous: int | None, chord, recent: list[int] | None = None) -> np.ndarray:
        """Nats for each of ``pitches`` (MIDI numbers, shape (n,)) after ``previous`` (MIDI,
        or None at a melody's start) over ``chord`` (a riffd.music Chord, or None), in a line
        whose ``recent`` pitches (MIDI, oldest first; RECENT_NOTES of them do) are given."""
        out = np.zeros(np.shape(pitches))
        if recent and self.uses_centre:
            out += self.centre[centre_bin(pitches, centre_of(recent))]
        if recent and self.uses_memory:
            out += self.memory[memory_bin(pitches, recent)]
        if previous is not None:
            out += self.interval[interval_bin(pitches, previous)]
        if chord is not None:
            out += self.chord_pc[chord_pc_bin(pitches, chord)]
        return out


def interval_bin(pitches, previous: int):
    """The ``interval`` table's bin of ``pitches`` (MIDI; an int or an array) after
    ``previous`` (MIDI): the interval clipped to +-MAX_INTERVAL semitones."""
    return np.clip(np.asarray(pitches) - previous, -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL


def chord_pc_bin(pitches, chord) -> tuple:
    """The ``chord_pc`` table's (row, column) of ``pitches`` (MIDI; an int or an array) over
    ``chord``: 1 for its tones (0 else), and the pitch class above its root."""
    pitches = np.asarray(pitches)
    return np.isin(pitches % 12, list(chord.tones)).astype(int), (pitches - chord.root) % 12


def duration_bin(tables, beats: float, den: int) -> int:
    """The Duration token's bin of a note ``beats`` long (quarter notes) in a meter over
    ``den`` (``tables``: the REMI kernel's Tables, ``P`` positions per beat of the
    denominator): the ``duration`` table's bin, and the one the neural model writes."""
    return int(tables.duration_bin(round(beats * (tables.P * den / 4))))


def centre_of(pitches: list[int]) -> float | None:
    """The centre of a line whose pitches so far are ``pitches`` (MIDI, oldest first): the
    mean of the last CENTRE_NOTES of them, or None before the first."""
    recent = pitches[-CENTRE_NOTES:]
    return sum(recent) / len(recent) if recent else None


def centre_bin(pitches, centre: float):
    """The ``centre`` table's bin of ``pitches`` (MIDI; an int or an array): the distance
    from ``centre`` rounded to semitones, clipped to +-MAX_INTERVAL."""
    return np.clip(np.rint(np.asarray(pitches) - centre).astype(int), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL


def memory_bin(pitches, recent: list[int]):
    """The ``memory`` table's bin of ``pitches`` (MIDI; an int or an array) after ``recent``
    (MIDI, oldest first): its pitch class's count among the last MEMORY_NOTES, capped."""
    counts = np.bincount(np.asarray(recent[-MEMORY_NOTES:], dtype=np.int64) % 12, minlength=12)
    return np.minimum(counts[np.asarray(pitches) % 12], MEMORY_BINS - 1)
