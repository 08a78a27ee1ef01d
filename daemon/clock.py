"""Beats <-> seconds: riffd's own tempo, or the DAW's MIDI clock.

Times are ``time.monotonic()`` seconds; positions are quarter-note beats from the song
start. MIDI clock follows the MIDI 1.0 Detailed Specification (MMA, 1996), "System
Real-Time Messages": 0xF8 at 24 per quarter note (24 PPQN), 0xFA start, 0xFB continue,
0xFC stop, and 0xF2 song position pointer counted in sixteenth notes (6 clocks each).
"""
from __future__ import annotations

import threading
from collections import deque

PPQN = 24  # MIDI timing clocks per quarter note
CLOCKS_PER_SIXTEENTH = 6
PAUSE_CLOCKS = 24  # a silence this long (in clocks) without 0xFC: the sender paused
LONG_GAP = 1.4     # a gap this many clocks long twice running is a slower tempo, not a loss
SHORT_GAP = 0.6    # a short gap right after a long one: that clock came late, none was lost
TEMPO_JUMP = 0.2   # three gaps this far (share of a clock) off one side: a new tempo


class InternalClock:
    """A steady tempo from an anchor: beat ``anchor_beat`` happens at ``anchor_t``.

    Readers on other threads see a consistent (anchor, tempo) because the three values
    are swapped as one tuple.
    """

    def __init__(self, tempo: float = 120.0):
        if tempo <= 0:
            raise ValueError(f"tempo must be positive, got {tempo} BPM")
        self._state = (0.0, 0.0, float(tempo), False)  # anchor_t, anchor_beat, bpm, running

    @property
    def running(self) -> bool:
        return self._state[3]

    @property
    def tempo(self) -> float:
        """Beats per minute."""
        return self._state[2]

    def start(self, t: float, beat: float = 0.0) -> None:
        """Run from ``beat`` at time ``t`` (seconds)."""
        self._state = (t, beat, self._state[2], True)

    def stop(self, t: float) -> None:
        """Freeze at the beat reached at ``t``."""
        self._state = (t, self.beat_at(t), self._state[2], False)

    def set_tempo(self, bpm: float, t: float) -> None:
        """Change tempo at time ``t`` without a jump in position. Raises ValueError if bpm <= 0."""
        if bpm <= 0:
            raise ValueError(f"tempo must be positive, got {bpm} BPM")
        anchor_t, anchor_beat, _, running = self._state
        beat = self.beat_at(t) if running else anchor_beat
        self._state = (t, beat, float(bpm), running)

    def nudge(self, beats: float) -> None:
        """Move the position by ``beats`` (positive: later) without changing tempo; the
        engine uses it to follow a player who keeps the time."""
        anchor_t, anchor_beat, bpm, running = self._state
        self._state = (anchor_t, anchor_beat + beats, bpm, running)

    def beat_at(self, t: float) -> float:
        """Position in beats at time ``t``; constant while stopped."""
        anchor_t, anchor_beat, bpm, running = self._state
        return anchor_beat + (t - anchor_t) * bpm / 60.0 if running else anchor_beat

    def time_at(self, beat: float) -> float:
        """Monotonic time (s) at which ``beat`` sounds at the current tempo."""
        anchor_t, anchor_beat, bpm, _ = self._state
        return anchor_t + (beat - anchor_beat) * 60.0 / bpm


class MidiClock:
    """Follows MIDI clock. Tempo and phase come from a least-squares line through the
    arrival times of the last ``window`` clocks, which smooths the jitter of a MIDI
    driver (JACK delivers a period's messages at once).

    Clocks get lost (USB and network MIDI drop messages): a gap of about n clocks counts
    as n clocks, so the beat never slips by whole clocks. A long gap followed by another
    is a slower tempo instead, and a long gap followed by a short one a late clock; either
    way the count is corrected at the next clock. A song position pointer re-anchors.
    """

    def __init__(self, window: int = 24, initial_tempo: float = 120.0):
        if window < 2:
            raise ValueError("window must hold at least 2 clocks")
        self._ticks: deque[tuple[int, float]] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._position = 0          # clocks since song start of the last tick
        self._await_first = False   # the first 0xF8 after start/continue sits on _position
        self._running = False
        self._skipped = 0           # clocks counted as lost at the last tick (tentative)
        self._off = 0               # consecutive gaps off the fitted period, signed
        self.inferred = 0           # clocks counted as lost
        # the fitted line t = a + s * clocks; s is seconds per clock
        self._line = (0.0, 60.0 / (initial_tempo * PPQN), False)

    @property
    def running(self) -> bool:
        return self._line[2]

    @property
    def tempo(self) -> float:
        """Smoothed beats per minute."""
        return 60.0 / (self._line[1] * PPQN)

    @property
    def position_beats(self) -> float:
        """Position of the last clock received, in beats."""
        return self._position / PPQN

    def start(self, t: float) -> None:
        """0xFA: the next clock is beat 0."""
        self._reset(0, running=True)

    def resume(self, t: float) -> None:
        """0xFB: the next clock continues from the current position."""
        self._reset(self._position, running=True)

    def stop(self, t: float) -> None:
        """0xFC: hold the position; times no longer advance."""
        a, s, _ = self._line
        self._running = False
        self._line = (a, s, False)

    def song_position(self, sixteenths: int, t: float) -> None:
        """0xF2: jump to ``sixteenths`` (MIDI beats); the next clock sits there."""
        self._reset(sixteenths * CLOCKS_PER_SIXTEENTH, running=self._running)

    def _reset(self, position: int, running: bool) -> None:
        with self._lock:
            self._ticks.clear()
            self._position = position
            self._skipped = self._off = 0
            self._await_first = True
            self._running = running
            a, s, _ = self._line
            self._line = (a, s, False)  # not running until a clock gives the phase

    def tick(self, t: float) -> None:
        """0xF8 received at monotonic time ``t``."""
        with self._lock:
            if not self._running:
                return
            if self._await_first:
                self._await_first = False
            else:
                step = self._step(t)  # may correct _position first
                self._position += step
            self._ticks.append((self._position, t))
            self._line = self._fit(self._line[1])

    def _step(self, t: float) -> int:
        """Clocks since the last one (lock held): 1, or n after n - 1 lost ones."""
        if not self._ticks:
            return 1
        last_pos, last_t = self._ticks[-1]
        gap = (t - last_t) / self._line[1]
        if gap > PAUSE_CLOCKS:
            self._ticks.clear()  # paused without a stop: the old phase is gone
            self._skipped = self._off = 0
            return 1
        if self._skipped and gap < SHORT_GAP:
            # the clock before came late (long gap, then this short one): none was lost
            self._position -= self._skipped
            self.inferred -= self._skipped
            self._ticks[-1] = (self._position, last_t)
            self._skipped = self._off = 0
            return 1
        if self._skipped and gap > LONG_GAP:
            # two long gaps running: the tempo fell and nothing was lost; undo the count
            self._position -= self._skipped
            self.inferred -= self._skipped
            self._ticks.clear()
            self._ticks.append((self._position, last_t))
            self._skipped = self._off = 0
            return 1
        step = max(1, round(gap))
        self._skipped = step - 1
        self.inferred += step - 1
        off = gap / step - 1.0
        side = 1 if off > TEMPO_JUMP else -1 if off < -TEMPO_JUMP else 0
        self._off = self._off + side if side and (self._off * side) >= 0 else side
        if abs(self._off) >= 3:
            # a new tempo: keep only the clocks played at it
            recent = list(self._ticks)[-2:]
            self._ticks.clear()
            self._ticks.extend(recent)
            self._off = 0
        return step

    def _fit(self, s_prev: float) -> tuple[float, float, bool]:
        n = len(self._ticks)
        if n < 2:
            pos, t = self._ticks[-1]
            return (t - s_prev * pos, s_prev, True)
        xs = [p for p, _ in self._ticks]
        ys = [t for _, t in self._ticks]
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        s = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        if s <= 0:
            s = s_prev
        return (my - s * mx, s, True)

    def beat_at(self, t: float) -> float:
        """Position in beats at time ``t``; frozen at the last clock while stopped."""
        a, s, running = self._line
        if not running:
            return self._position / PPQN
        return (t - a) / s / PPQN

    def time_at(self, beat: float) -> float:
        """Monotonic time (s) at which ``beat`` is expected, from the fitted line."""
        a, s, _ = self._line
        return a + s * beat * PPQN
