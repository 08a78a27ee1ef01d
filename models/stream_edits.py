"""The transformer's token stream edited from outside its sampling: cut back by a
rollback, and given the melody it hears.

``MelodyModel.rollback`` forgets the notes from a beat on; a model with a token stream
(models/neural.py) must forget their tokens too (live only: batch never rolls back), and
the KV cache behind them, and rewrite the Duration of a kept note that the rollback
shortened, so that the stream says what was played. A rollback past the cursor skips a
stretch the model listened to (a call-response call): the player's notes there are
forced into the stream, as a given melody (``render --continue``) is where the stream
begins (``NeuralModel._begin``), so that the model goes on from them. Mixed into
NeuralModel, whose stream (``ids``, ``times``, ``states``, ``enc_states``, ``enc``,
``window``, ``_force_note``) these methods edit.
"""
from __future__ import annotations

import bisect
import math

from .protocol import HEARD_BARS, MelodyNote


class StreamEdits:
    """``rollback`` and ``_after_rollback`` (MelodyModel's hook) for a model that keeps a
    token stream, and what it hears (``_heard_since``, ``_force_heard``)."""

    def _after_rollback(self) -> None:
        k = bisect.bisect_left(self.times, self.cursor - 1e-9)
        while k > 0 and (self.enc_states[k - 1] is None or self.ids[k - 1] in self._position_ids):
            # not a point the encoder can return to (drop its whole call), or a Position
            # whose note never came (the plan stopped there): a batch stream has neither
            k -= 1
        if k < len(self.ids):
            if k == 0:
                self._restart_stream()
                return
            del self.ids[k:], self.times[k:], self.states[k:], self.enc_states[k:]
            self.state = self.states[-1]
            self.enc.restore(self.enc_states[-1])
        self.window.forget_from(min(k, self._shorten_last_note()))

    def _shorten_last_note(self) -> int:
        """Rewrite the Duration token of the last kept note when the rollback shortened
        it, so the stream says what was played; returns its index (else len(ids))."""
        j = len(self.ids) - 1
        while j >= 0 and self.groups.pitch_of[self.ids[j]] < 0 and self.ids[j] not in self._duration_ids:
            j -= 1
        if j < 0 or self.ids[j] not in self._duration_ids or not self.generated:
            return len(self.ids)
        last, beat = self.generated[-1], self.times[j]
        if abs(beat + self._swing(beat) - last.start) > 1e-6:
            return len(self.ids)  # that note never made it into the stream
        token = int(self.tables.dur_ids[self._duration_bin(beat, last.end)])
        if token == self.ids[j]:
            return len(self.ids)
        self.ids[j] = token
        return j

    def _heard_since(self, since: float) -> list[MelodyNote]:
        """The player's notes (``player_notes``: the Context's given melody, then live melody
        keys) from ``since`` to the cursor, none before the Context's ``heard_since``, in one
        voice (MelodyModel.keys_between: a key held or pedalled sounds to the next or the cursor)."""
        return self.keys_between(max(since, self.heard_since), self.cursor)

    def _force_heard(self, notes: list[MelodyNote]) -> None:
        """Force ``notes`` (before the cursor) into the stream with their chords."""
        resume, self.cursor = self.cursor, notes[0].start if notes else self.cursor  # their chords (_pending_chord)
        for note in notes:
            self._force_note(note)
        self.cursor = resume

    def rollback(self, beat: float) -> None:
        """As MelodyModel.rollback; a ``beat`` past the cursor skips a stretch the model
        listened to (a call-response call): the player's notes there, of the last
        HEARD_BARS bars, are forced into the stream, so that the answer follows the call."""
        skipped = beat > self.cursor + 1e-9 and self.state.bar >= 0 and bool(self.times)
        since = self.times[-1] if skipped else 0.0  # a key on the stream's last beat (its Bar) is the call's too
        super().rollback(beat)
        if skipped and self.state.bar >= 0:  # (a stream the rollback emptied begins anew: _begin hears them)
            now = int(math.floor(self.cursor / self.bar_beats + 1e-9))
            self._force_heard(self._heard_since(max(since, self._bar_start(now - HEARD_BARS))))
