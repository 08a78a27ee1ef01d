"""Beats <-> seconds: riffd's own tempo, or the DAW's MIDI clock.

Times are ``time.monotonic()`` seconds; positions are quarter-note beats from the song
start. MIDI clock follows the MIDI 1.0 Detailed Specification (MMA, 1996), "System
Real-Time Messages": 0xF8 at 24 per quarter note (24 PPQN), 0xFA start, 0xFB continue,
0xFC stop, and 0xF2 song position pointer counted in sixteenth notes (6 clocks each).
"""
from __future__ import annotations

import logging
import threading
from collections import deque

PPQN = 24  # MIDI timing clocks per quarter note
CLOCKS_PER_SIXTEENTH = 6
PAUSE_CLOCKS = 24  # a silence this long (in clocks) without 0xFC: the sender paused
LONG_GAP = 1.4     # gaps this many clocks long three times running: a slower tempo, not a loss
CONFIRM = 48       # clocks after a gap within which clocks back on time undo its count
CATCH_UP = 0.75    # a gap this short after a long one: late clocks catching up (a stall)
BUNCHED = 0.35     # a gap this short is clocks delivered together after a stall, not a tempo
LATE_S = 0.002     # a clock this far behind the fitted line (s) came late: fit without it
TEMPO_JUMP = 0.2   # three gaps this far (share of a clock) off one side: a new tempo
MEASURED = 4       # clocks in the window before a gap may count as a loss: until then the
                   # tempo is a guess (120 BPM at first), and a slower one's gap looks like one
TEMPO_RANGE = (20.0, 400.0)  # BPM a line through fewer clocks than that may take at once
SETTLED = 8        # clocks in a row on one line that show where the clocks settled after a gap
FLAT = 0.02        # lateness changing less than this (clocks per clock): back at the old tempo
SPREAD = 0.2       # clocks settled on a line lie this close to it (a JACK period is 0.17 at 160 BPM)

# Following a player (InternalClock.follow), a phase-locked loop:
PHASE_GAIN = 0.5   # share of a strike's timing error the position follows
TEMPO_GAIN = 0.5   # the ratio of the player's tempo to the clock's is followed to this power
TEMPO_STEP = 0.04  # one strike moves the tempo at most this share (an anticipated chord, little)
TEMPO_DRIFT = 0.2  # the tempo followed stays within this share of the tempo set
STRIKES = 4        # the player's tempo: over the span of this many strikes

log = logging.getLogger("riffd.daemon")


class InternalClock:
    """A steady tempo from an anchor: beat ``anchor_beat`` happens at ``anchor_t``;
    ``follow`` moves anchor and tempo towards a player's strikes.

    Readers on other threads see a consistent (anchor, tempo) because the three values
    are swapped as one tuple.
    """

    def __init__(self, tempo: float = 120.0):
        if tempo <= 0:
            raise ValueError(f"tempo must be positive, got {tempo} BPM")
        self._state = (0.0, 0.0, float(tempo), False)  # anchor_t, anchor_beat, bpm, running
        self._set = float(tempo)  # the tempo asked for (--tempo, /riffd/tempo): followed within TEMPO_DRIFT
        self._strikes: deque[tuple[float, float]] = deque(maxlen=STRIKES)  # (t, beat) of the last followed

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
        self._strikes.clear()

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
        self._set = float(bpm)
        self._strikes.clear()  # the player is followed from the tempo set, not from before it

    def follow(self, t: float, beat: float) -> None:
        """A player's strike at ``t`` (s), meant for ``beat``: a phase-locked loop. The
        position moves ``PHASE_GAIN`` of the way to the strike; the tempo towards the
        player's since the oldest of the last ``STRIKES`` strikes (their beats over their
        seconds: a strike's jitter counts over several beats), by the power ``TEMPO_GAIN``
        of the ratio, each strike at most ``TEMPO_STEP``, within ``TEMPO_DRIFT`` of the
        tempo set. A steady lateness moves the phase only."""
        anchor_t, anchor_beat, bpm, running = self._state
        if not running:
            return
        heard = self.beat_at(t)
        first = self._strikes[0] if self._strikes else None
        self._strikes.append((t, beat))
        if first is not None and beat - first[1] > 0.5 and t > first[0]:
            played = (beat - first[1]) * 60.0 / (t - first[0])
            ratio = min(1.0 + TEMPO_STEP, max(1.0 - TEMPO_STEP, played / bpm)) ** TEMPO_GAIN
            bpm = min(self._set * (1.0 + TEMPO_DRIFT), max(self._set * (1.0 - TEMPO_DRIFT), bpm * ratio))
        self._state = (t, heard + (beat - heard) * PHASE_GAIN, bpm, True)

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
    as n clocks, so the beat never slips by whole clocks. Three long gaps running are a
    slower tempo instead, and a long gap after which the clocks come back on time (at
    once or over several clocks, within ``CONFIRM``) was a stall that made them late;
    either way the count is corrected. A song position pointer re-anchors. A stall's
    late clocks are left out of the fitted line.
    """

    def __init__(self, window: int = 24, initial_tempo: float = 120.0):
        if window < 2:
            raise ValueError("window must hold at least 2 clocks")
        self._ticks: deque[tuple[int, float]] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._position = 0          # clocks since song start of the last tick
        self._await_first = False   # the first 0xF8 after start/continue sits on _position
        self._running = False
        self._skipped = 0           # clocks counted as lost at the last gap (tentative)
        self._since = 0             # clocks received since that gap, that one included
        self._gap_line = (0.0, 1.0, False)  # the fitted line before that gap, and the
        self._gap_from = 0           # position of the clock before it
        self._gap = 0.0              # its length, in clocks
        self._lates: list[float] = []  # the lateness of each clock since, in clocks, on that line
        self._caught = False        # a short gap came since: late clocks catching up
        self._all_long = False      # every gap since then was long (a slower tempo?)
        self._off = 0               # consecutive gaps off the fitted period, signed
        self.inferred = 0           # clocks counted as lost
        self._told_stopped = False  # clocks came while stopped, and the log said so
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
            self._told_stopped = self._told_stopped and not running
            a, s, _ = self._line
            self._line = (a, s, False)  # not running until a clock gives the phase

    def tick(self, t: float) -> None:
        """0xF8 received at monotonic time ``t``."""
        with self._lock:
            if not self._running:
                if not self._told_stopped:  # riffd started while the DAW plays, say: no start came
                    self._told_stopped = True
                    log.info("MIDI clock arrives but the transport is stopped: riffd follows it from the "
                             "DAW's next start or continue (stop and play again to join a song playing)")
                return
            if self._await_first:
                self._await_first = False
            else:
                step = self._step(t)  # may correct _position first
                self._position += step
            self._ticks.append((self._position, t))
            self._line = self._fit(self._line[1])

    def _step(self, t: float) -> int:
        """Clocks since the last one (lock held): 1, or n after n - 1 lost ones.

        A gap of about n clocks counts n at once, tentatively: a stalled driver delivers
        clocks late, never early, so the lateness of the clocks after it (in clocks,
        against the line fitted before the gap, counting none lost) tells how many were
        really lost: the least lateness once a short gap shows late clocks catching up,
        or the level at which ``SETTLED`` clocks in a row sit on that line (the drift of a
        faster tempo is neither). ``CONFIRM`` clocks on, the count stands."""
        if not self._ticks:
            return 1
        last_pos, last_t = self._ticks[-1]
        if len(self._ticks) < MEASURED and not self._skipped:
            return 1  # no tempo measured since the (re)start: a long gap is that tempo, not a loss
        gap = (t - last_t) / self._line[1]
        if gap > PAUSE_CLOCKS:
            self._ticks.clear()  # paused without a stop: the old phase is gone
            self._skipped = self._off = 0
            return 1
        if self._skipped:
            self._pending(t, gap, last_t)
            return 1
        step = max(1, round(gap))
        self._skipped, self._since, self._all_long, self._caught = step - 1, 1, True, False
        self._gap_line, self._gap_from, self._gap = self._line, last_pos, gap
        self._lates = [self._lateness(t)]
        self.inferred += step - 1
        off = gap / step - 1.0
        side = 0 if gap < BUNCHED else 1 if off > TEMPO_JUMP else -1 if off < -TEMPO_JUMP else 0
        self._off = self._off + side if side and (self._off * side) >= 0 else side
        if abs(self._off) >= 3:
            # a new tempo: keep only the clocks played at it
            recent = list(self._ticks)[-2:]
            self._ticks.clear()
            self._ticks.extend(recent)
            self._off = 0
        return step

    def _pending(self, t: float, gap: float, last_t: float) -> None:
        """Weigh a clock that came while a gap's count is tentative (lock held): it counts
        as one clock, and it may take back clocks counted at the gap or settle the count."""
        self._since += 1
        self._lates.append(self._lateness(t))
        self._all_long = self._all_long and gap > LONG_GAP
        if self._all_long and self._since >= 3:
            # three long gaps running: the tempo fell and nothing was lost (a stall's
            # long gap is followed by short ones, a loss's by regular ones)
            self._undo(self._skipped, self._since - 1)
            self._ticks.clear()
            self._ticks.append((self._position, last_t))
            self._skipped = self._off = 0
            return
        self._caught = self._caught or gap < CATCH_UP
        if self._caught:  # the clocks were late (a stall): the least lateness is what was lost
            self._keep_at_most(min(self._lates))
        level = _flat_level(self._lates[-SETTLED:]) if len(self._lates) >= SETTLED else None
        if level is not None:
            # the clocks keep the old line's tempo again (a faster one would drift early): how
            # late they sit is how many were lost, whether they caught up at once or slowly
            self._keep_at_most(level)
            self._settle(f"settled {level:.2f} clocks late")
        elif self._since >= CONFIRM:
            self._settle(f"not settled within {CONFIRM} clocks")

    def _keep_at_most(self, lateness: float) -> None:
        """Count no more clocks lost at the gap than ``lateness`` (clocks), rounded."""
        lost = max(0, int(lateness + 0.5))
        if lost < self._skipped:
            self._undo(self._skipped - lost, self._since - 1)
            self._skipped = lost

    def _settle(self, how: str) -> None:
        """End a gap's tentative count: what is still counted stays counted; say so once,
        with ``how`` the clocks after the gap came back."""
        if self._skipped:
            log.info("MIDI clock: %d clock(s) counted as lost at beat %.2f (a gap of %.2f clocks; "
                     "the clocks since came %.2f clocks late at least, %s)",
                     self._skipped, (self._gap_from + 1) / PPQN, self._gap, min(self._lates), how)
        self._skipped = 0

    def _lateness(self, t: float) -> float:
        """How late (clocks) the ``_since``-th clock after the gap came at ``t``, on the
        line fitted before the gap and counting none lost."""
        a, s, _ = self._gap_line
        return (t - a) / s - (self._gap_from + self._since)

    def _undo(self, n: int, recent: int) -> None:
        """Take back ``n`` clocks counted as lost, from the position and from the
        ``recent`` clocks received since they were counted (lock held)."""
        self._position -= n
        self.inferred -= n
        for i in range(max(0, len(self._ticks) - recent), len(self._ticks)):
            pos, when = self._ticks[i]
            self._ticks[i] = (pos - n, when)

    def _fit(self, s_prev: float) -> tuple[float, float, bool]:
        """The least-squares line through the window's clocks, fitted again without the
        ones a stall made late (over ``LATE_S`` behind the first line) if most remain."""
        n = len(self._ticks)
        if n < 2:
            pos, t = self._ticks[-1]
            return (t - s_prev * pos, s_prev, True)
        free = n < MEASURED  # the tempo is being measured: any musical one goes
        a, s = _line(self._ticks, s_prev, free)
        for _ in range(2):  # twice: a stall at one end of the window tilts the first line
            on_time = [(p, t) for p, t in self._ticks if t - (a + s * p) <= LATE_S]
            if len(on_time) == n or 2 * len(on_time) <= n:
                break
            a, s = _line(on_time, s_prev, free)
        return (a, s, True)

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


def _flat_level(lates: list[float]) -> float | None:
    """The mean of ``lates`` (clocks) if they lie on a flat line: slope under ``FLAT``
    clocks per clock (the clocks keep the tempo of the line they are measured on) and
    each within ``SPREAD`` of the mean (a stall's sawtooth is no level); else None."""
    n = len(lates)
    mx, my = (n - 1) / 2.0, sum(lates) / n
    sxx = sum((i - mx) ** 2 for i in range(n))
    slope = sum((i - mx) * (v - my) for i, v in enumerate(lates)) / sxx
    if abs(slope) >= FLAT or any(abs(v - my) > SPREAD for v in lates):
        return None
    return my


def _line(ticks, s_prev: float, free: bool = False) -> tuple[float, float]:
    """(a, s) of the least-squares line t = a + s * clocks through (clocks, t, ...); a
    slope beyond half or twice ``s_prev`` keeps ``s_prev`` (clocks bunched by a stall are
    no tempo; a real change takes two fits). ``free``: any slope of a tempo within
    TEMPO_RANGE goes (the tempo is being measured after a start or a jump)."""
    n = len(ticks)
    mx = sum(tick[0] for tick in ticks) / n
    my = sum(tick[1] for tick in ticks) / n
    sxx = sum((tick[0] - mx) ** 2 for tick in ticks)
    s = sum((tick[0] - mx) * (tick[1] - my) for tick in ticks) / sxx if sxx else s_prev
    low, high = (60.0 / (TEMPO_RANGE[1] * PPQN), 60.0 / (TEMPO_RANGE[0] * PPQN)) if free else (s_prev / 2, 2 * s_prev)
    if not low <= s <= high:
        s = s_prev
    return my - s * mx, s
