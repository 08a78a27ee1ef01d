"""Call-response turns: when the player's call is over, and from which beat riffd answers.

A call is over in one of three ways:

- after ``response_wait_beats`` of silence, no key held (the default; Magenta's MIDI
  interface ends a call the same way when it has no end-of-call control): the answer
  starts at the next beat a whole number of bars after the call's first chord
  (daemon/phrasing.answer_plan), so a call let go on a bar line is answered a bar on;
- with the preset's ``call_bars``, on the beat ``call_bars`` bars after it began, whether
  or not the player let go: trading fours (``call_bars`` and ``phrase_bars`` 4), the answer
  planned ``lead`` beats ahead so that it sounds on that downbeat. A rest inside the call
  does not end it;
- when the player ends it (``end``: a footswitch's controller, ``serve --end-call-cc``,
  or ``/riffd/call/end``): the answer starts at the next such beat, without the wait.

A call begins at its first chord's beat (a change, or the chord sounding struck again),
or at the bar line nearest its first key (a key in a bar's second half is a pickup to
the next). With ``call_bars``, keys and chords that come after the answer was planned
but before it starts are the call's tail: they neither cut the answer nor begin the
next call (waiting for silence, such a key says the player had not finished, and the
answer is cut).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from riffd.presets import Preset

END_CALL_LEVEL = 64  # a controller value this high ends the call (a footswitch pressed: MIDI 1.0, CC 64-69's on)
ANSWER_LEAD_S = 0.05  # a call_bars answer is planned this early (s): its model calls, before its downbeat


@dataclass
class Call:
    """What the player did since riffd last answered: ``chords`` (beat, Chord), ``notes``
    (melody keys counted), ``first`` (beat it began, None: nothing yet) and ``ended`` (the
    player said it is over)."""
    chords: list[tuple[float, object]] = field(default_factory=list)
    notes: int = 0
    first: float | None = None
    ended: bool = False


class Turns:
    """The call being heard (``call``) and the answer planned or sounding: from ``start``
    to ``until`` (beats; both None when none is). ``end_call_cc``: the controller (0-127)
    whose press ends a call, or None."""

    def __init__(self, end_call_cc: int | None = None) -> None:
        self.call, self.start, self.until, self.end_call_cc = Call(), None, None, end_call_cc

    def control(self, number: int, value: int) -> None:
        """A controller change from the player: ``end_call_cc`` pressed ends the call."""
        if number == self.end_call_cc and value >= END_CALL_LEVEL:
            self.end()

    def heard(self, beat: float, preset: Preset, chord=None) -> bool:
        """A chord (``chord``) or a melody key (None) of the player's at ``beat``. Returns
        False where it is the tail of a call already answered (before the answer's start)."""
        if self.start is not None and beat < self.start - 1e-9:
            return False
        if chord is not None:
            self.call.chords.append((beat, chord))
        else:
            self.call.notes += 1
        if self.call.first is None:
            bar = preset.beats_per_bar
            self.call.first = beat if chord is not None else bar * math.floor(beat / bar + 0.5)
        return True

    def end(self) -> None:
        """The player ends the call now (if one was played): it is answered at the next
        beat a whole number of bars after it began."""
        if self.call.chords or self.call.notes:
            self.call.ended = True

    def cut(self, beat: float, preset: Preset) -> bool:
        """Whether a key struck at ``beat`` cuts the answer (which is then over): one
        sounding, or, unless calls last ``call_bars``, one still to start (the player had
        not finished)."""
        if self.until is None or beat >= self.until - 1e-9 or (beat < self.start - 1e-9 and preset.call_bars):
            return False
        self.start = self.until = None
        return True

    def due(self, beat: float, silent_beats: float, held: bool, preset: Preset,
            lead: float = 0.0) -> tuple[float, float] | None:
        """Whether to answer now, at ``beat``: (the earliest beat the answer may start, the
        beat the call ended) for ``answer_plan``, or None. ``silent_beats``: since the
        player's last key event; ``held``: a key or the pedal is down; ``lead``: beats a
        ``call_bars`` answer is planned before its downbeat."""
        if self.until is not None and beat >= self.until - 1e-9:
            self.start = self.until = None  # the answer is over; listen again
        call = self.call
        if self.until is not None or call.first is None:
            return None
        if preset.call_bars and not call.ended:
            downbeat = call.first + preset.call_bars * preset.beats_per_bar
            if beat < downbeat - lead - 1e-9:
                return None
            return (downbeat if beat < downbeat + 1.0 else beat), downbeat  # a beat late (a jump): the next bar
        if call.ended or (not held and silent_beats >= preset.response_wait_beats):
            return beat, (beat if call.ended else beat - silent_beats)
        return None

    def answering(self, start: float, until: float) -> None:
        """The answer was planned from ``start`` to ``until``: a new call begins."""
        self.call, self.start, self.until = Call(), start, until
