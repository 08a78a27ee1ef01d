"""Reactions that sound before the model has chosen their length.

The transformer chooses a note's pitch, then its length (one more model call, 0.3-1 ms
on a cold cache). A note that answers a chord already struck is due at once, so it
starts as soon as its pitch is known, with a placeholder end, and takes its real end
when the model's note arrives (MelodyModel.on_onset, Scheduler.set_end).

A later note that is already due as well (the answer came late, after a rolled chord,
and the model's first note was shorter than the delay) is not struck a few ms after the
answer: the answer holds on to that note's end instead, one attack as a player makes.
"""
from __future__ import annotations

from .scheduler import Note, Scheduler

PLACEHOLDER_BEATS = 0.25  # the end a note keeps if its length never comes (a model fault)
SHORTEST_BEATS = 0.1      # a reaction sounds at least this long (as Engine._schedule plays them)


class EarlyOnsets:
    """The reaction note, if any, that sounds while its length is being chosen."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.pending: tuple[float, int, float | None, int] | None = None  # start, pitch, played at, id
        self.answer: tuple[float, int, float] | None = None  # the sounding answer: start, id, end (beats)

    def forget(self) -> None:
        """A new plan: the next due note is a new answer."""
        self.pending = self.answer = None

    def start(self, start: float, pitch: int, velocity: int, now_beat: float, channel: int) -> None:
        """A note at ``start`` (beats) chosen while planning at ``now_beat``: if it is
        already due, it sounds now (one voice: it ends the note before)."""
        if start >= now_beat:
            return  # on time: it is scheduled whole when its length is known
        if self.answer is not None and self.answer[0] < start and self.scheduler.holds(self.answer[1]):
            self.pending = (start, pitch, None, self.answer[1])  # due too: the answer holds on
            return
        self.scheduler.end_by(now_beat, channel)
        nid = self.scheduler.add(Note(now_beat, now_beat + PLACEHOLDER_BEATS, pitch, velocity, channel),
                                 provisional=True)
        self.pending = (start, pitch, now_beat, nid)
        self.answer = (start, nid, now_beat + PLACEHOLDER_BEATS)
        self.scheduler.hand_over(wait=False)  # the sending thread takes the GIL and sends it now

    def finish(self, start: float, pitch: int, end: float) -> bool:
        """The model's note (``start``, ``pitch``, ``end`` in beats) arrived: True if it is
        the one already sounding, which now ends at ``end``."""
        pending, self.pending = self.pending, None
        if pending is None:
            return False
        if pending[2] is None:  # held on by the answer
            if abs(pending[0] - start) > 1e-9 or pending[1] != pitch or self.answer is None:
                return False
            self._end_answer(max(end, self.answer[2]))
            return True
        if abs(pending[0] - start) > 1e-9 or pending[1] != pitch:
            # another note came (the model failed after the pitch; the rules model played on)
            self._end_answer(pending[2] + SHORTEST_BEATS)
            return False
        self._end_answer(max(end, pending[2] + SHORTEST_BEATS))
        return True

    def _end_answer(self, end: float) -> None:
        start, nid, _ = self.answer
        self.answer = (start, nid, end)
        self.scheduler.set_end(nid, end)
