"""The transformer's token stream after a rollback (live only: batch never rolls back).

``MelodyModel.rollback`` forgets the notes from a beat on; a model with a token stream
(models/neural.py) must forget their tokens too, and the KV cache behind them, and
rewrite the Duration of a kept note that the rollback shortened, so that the stream
says what was played. Mixed into NeuralModel, whose stream (``ids``, ``times``,
``states``, ``enc_states``, ``enc``, ``window``) these methods cut.
"""
from __future__ import annotations

import bisect


class StreamRollback:
    """``_after_rollback`` (MelodyModel's hook) for a model that keeps a token stream."""

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
