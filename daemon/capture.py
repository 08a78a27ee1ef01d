"""Chord capture: held keys plus the sustain pedal, named as chords.

Keys struck within ``strum_s`` of each other form one strike. A strike of at least
``min_strike`` pitch classes names the chord by itself, so a legato change (new keys down
before the old ones are up) or a pedalled change is not blurred by the previous chord;
a smaller strike (a new bass note under held keys) is named with everything sounding.
Releasing keys never changes the chord: silence keeps the last one.
"""
from __future__ import annotations

from dataclasses import dataclass

from riffd.music.chords import Chord, recognize

SUSTAIN_CC = 64


@dataclass(frozen=True, slots=True)
class ChordChange:
    """A new chord. ``t``: monotonic seconds of the strike's first key; ``strike``: an id
    shared by the changes of one strike (later keys of a strum refine the same change)."""
    t: float
    chord: Chord
    pitches: tuple[int, ...]
    strike: int


class ChordCapture:
    """Tracks keys and pedal of one player; ``note_on`` returns a ChordChange or None."""

    def __init__(self, strum_s: float = 0.06, min_strike: int = 3):
        self.strum_s, self.min_strike = strum_s, min_strike
        self.held: set[int] = set()        # keys down
        self.sustained: set[int] = set()   # keys up but held by the pedal
        self.pedal = False
        self.chord: Chord | None = None
        self._strike: list[int] = []
        self._strike_t = float("-inf")
        self._strike_id = 0

    @property
    def sounding(self) -> set[int]:
        """Pitches sounding now: keys down plus pedal-held ones."""
        return self.held | self.sustained

    def note_on(self, pitch: int, t: float) -> ChordChange | None:
        self.sustained.discard(pitch)
        self.held.add(pitch)
        if t - self._strike_t > self.strum_s:
            self._strike, self._strike_t = [], t
            self._strike_id += 1
        self._strike.append(pitch)
        strike = [p for p in self._strike if p in self.held]
        if len({p % 12 for p in strike}) >= self.min_strike:
            pitches = strike
        else:
            pitches = sorted(self.sounding)
        chord = recognize(pitches)
        if chord is None or chord == self.chord:
            return None
        self.chord = chord
        return ChordChange(self._strike_t, chord, tuple(sorted(pitches)), self._strike_id)

    def note_off(self, pitch: int) -> None:
        if pitch in self.held:
            self.held.discard(pitch)
            if self.pedal:
                self.sustained.add(pitch)

    def control(self, control: int, value: int) -> None:
        """CC64 >= 64 holds released keys; below 64 lets them go."""
        if control != SUSTAIN_CC:
            return
        self.pedal = value >= 64
        if not self.pedal:
            self.sustained.clear()

    def forget_chord(self) -> None:
        """Forget the last chord (keys and pedal stay): the next strike is a change."""
        self.chord = None

    def reset(self) -> None:
        """Forget keys, pedal and chord (after a panic or a song restart)."""
        self.held.clear()
        self.sustained.clear()
        self.pedal = False
        self.chord = None
        self._strike, self._strike_t = [], float("-inf")


def snap_to_beat(beat: float, tolerance: float, grid: float = 0.25) -> float:
    """Where a chord struck at position ``beat`` counts.

    Struck up to ``tolerance`` beats before a beat, or up to ``tolerance`` after one, it
    counts on that beat; elsewhere on the nearest ``grid`` step (a sixteenth by default).
    """
    nearest = round(beat)
    if abs(beat - nearest) <= tolerance:
        return float(nearest)
    return round(beat / grid) * grid
