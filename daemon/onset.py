"""Reactions that sound before the model has chosen their length.

The transformer chooses a note's pitch, then its length (one more model call, 0.3-1 ms
on a cold cache). A note that answers a chord already struck is due at once, so it
starts as soon as its pitch is known, with a placeholder end, and takes its real end
when the model's note arrives (MelodyModel.on_onset, Scheduler.set_end).
"""
from __future__ import annotations

import time

from .scheduler import Note, Scheduler

PLACEHOLDER_BEATS = 0.25  # the end a note keeps if its length never comes (a model fault)
SHORTEST_BEATS = 0.1      # a reaction sounds at least this long (as Engine._schedule plays them)


class EarlyOnsets:
    """The reaction note, if any, that sounds while its length is being chosen."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.pending: tuple[float, int, float, int] | None = None  # start, pitch, played at, id

    def start(self, start: float, pitch: int, velocity: int, now_beat: float, channel: int) -> None:
        """A note at ``start`` (beats) chosen while planning at ``now_beat``: if it is
        already due, it sounds now (one voice: it ends the note before)."""
        if start >= now_beat:
            return  # on time: it is scheduled whole when its length is known
        self.scheduler.end_by(now_beat, channel)
        nid = self.scheduler.add(Note(now_beat, now_beat + PLACEHOLDER_BEATS, pitch, velocity, channel),
                                 provisional=True)
        self.pending = (start, pitch, now_beat, nid)
        time.sleep(0)  # let the sending thread take the GIL and send it now

    def finish(self, start: float, pitch: int, end: float) -> bool:
        """The model's note (``start``, ``pitch``, ``end`` in beats) arrived: True if it is
        the one already sounding, which now ends at ``end``."""
        pending, self.pending = self.pending, None
        if pending is None:
            return False
        if abs(pending[0] - start) > 1e-9 or pending[1] != pitch:
            # another note came (the model failed after the pitch; the rules model played on)
            self.scheduler.set_end(pending[3], pending[2] + SHORTEST_BEATS)
            return False
        self.scheduler.set_end(pending[3], max(end, pending[2] + SHORTEST_BEATS))
        return True
