"""The window of a token stream that a runner's KV cache holds.

A transformer sees at most ``max_context`` tokens (its training window). The window is
``prefix + ids[start:]`` of a stream ``ids`` that only the model appends to (or cuts
back, on a rollback); the KV cache holds ``prefix + ids[start:fed]``. Past the window,
it slides to the newest bars and the cache is filled again. Live, ``prepare`` does that
ahead of need, in idle chunks: a full prefill of ~190 tokens costs ~10 ms of onnx on
one core, which on a chord change was the whole reaction tail. The slide is taken early,
at the first idle moment after a Chord token (``early``, set by the owner), and the new
window fills a second KV cache (the runner's ``twin``, on the same weights) while the
old one goes on serving: a chord change during a refill is answered from the old window,
which still has ``SLIDE_ROOM`` tokens of room, and the caches swap once the new one has
caught up. (With one cache, a change that came during a refill paid its rest: 20 of 391
changes in 5 minutes at 160 BPM, docs/measured.md.)
"""
from __future__ import annotations

import numpy as np

# Slide before fewer than SLIDE_ROOM tokens are left (a reaction plus a beat of
# look-ahead is at most about 40), keeping KEEP; refill PREFILL_CHUNK per call. A refill
# costs in proportion to KEEP and comes every max_context - KEEP tokens: at 160 of 256 a
# token of batch rendering pays 1.7 tokens of refill, at 192 (as before) 3.
SLIDE_ROOM = 40
KEEP = 160
# Right after a chord change, slide already once fewer than SLIDE_ROOM + EARLY_ROOM
# tokens are left: a change every 2 beats adds about 20 tokens, a change a bar about 40.
EARLY_ROOM = 48
PREFILL_CHUNK = 16


class Window:
    """``runner`` (feed, trim, reset, length; ``twin()`` for a second cache, optional)
    over the stream ``ids`` (a list the owner keeps and passes in); ``bar`` is the Bar
    token's id, where a slid window starts."""

    def __init__(self, runner, max_context: int, bar: int):
        self.runner, self.max_context, self.bar = runner, max_context, bar
        self.spare = None  # the twin a live refill fills (made at the first one; batch never slides ahead)
        # a checkpoint trained on shorter windows (finetune --seq-len) scales them down
        self.keep = min(KEEP, max_context * 5 // 8)
        self.room, self.early_room = min(SLIDE_ROOM, max_context // 6), min(EARLY_ROOM, max_context // 5)
        self.prefix: list[int] = []
        self.waits = 0  # model calls that had to finish a refill first (a reaction's tail)
        self.reset()

    def reset(self, prefix: list[int] | None = None) -> None:
        """Empty the cache; the stream starts again (with ``prefix``, if given)."""
        if prefix is not None:
            self.prefix = list(prefix)
        self.start = self.fed = 0
        self.last: np.ndarray | None = None  # the logits after ids[fed - 1]
        self.refilling = False
        self.early = False  # a Chord token came since the last prepare: a good time to slide
        self.runner.reset()
        self._stop_refill()

    def logits(self, ids: list[int]) -> np.ndarray:
        """The logits (shape (vocab,)) after the last of ``ids``, sliding first if the
        window is full (with a refill under way: finishing it, counted in ``waits``)."""
        if self._full(ids, 0) and self.refilling and self.spare is not None:
            self.waits += 1
            self._refill(ids, len(ids))
        if self._full(ids, 0):  # batch, or a refill that began too long ago
            self.slide(ids, self.keep)
        if self.refilling and self.spare is None:
            self.waits += 1
            self.refilling = False
        self.fill(ids, len(ids))
        return self.last

    def _full(self, ids: list[int], room: int) -> bool:
        return len(self.prefix) + len(ids) - self.start > self.max_context - room

    def fill(self, ids: list[int], upto: int) -> None:
        """Feed the cache up to ``ids[:upto]``."""
        todo = self.prefix + ids[self.start:upto] if self.runner.length == 0 else ids[self.fed:upto]
        if todo or self.last is None:
            self.last = self.runner.feed(todo)
        self.fed = upto

    def _first(self, ids: list[int], keep: int) -> int:
        """Where a window of the newest bars (about ``keep`` tokens with the prefix) starts."""
        first = len(ids) - (keep - len(self.prefix))
        return next((i for i in range(first, len(ids)) if ids[i] == self.bar), first)

    def slide(self, ids: list[int], keep: int) -> None:
        """Keep the newest bars (about ``keep`` tokens with the prefix), from a Bar on."""
        self.start = self._first(ids, keep)
        self.runner.reset()
        self.fed, self.last = self.start, None

    def prepare(self, ids: list[int]) -> bool:
        """Idle work: slide before the window runs out (to ``KEEP`` tokens, or 5/8 of a
        shorter window; after a Chord token, ``EARLY_ROOM`` sooner) and refill
        ``PREFILL_CHUNK`` tokens per call, into the twin cache where the runner has one; else
        feed the serving cache what was appended without a model call; True while either
        goes on."""
        room = self.room + (self.early_room if self.early else 0)
        self.early = False
        if not self.refilling and self._full(ids, room):
            if self.spare is None and hasattr(self.runner, "twin"):
                self.spare = self.runner.twin()
            if self.spare is None:
                self.slide(ids, self.keep)
            else:
                self.spare.reset()
                self.spare_start = self.spare_fed = self._first(ids, self.keep)
            self.refilling = True
        if self._catch_up(ids):  # the serving cache first: the next change is answered from it
            return True
        if not self.refilling:
            return False
        if self.spare is not None:
            return self._refill(ids, min(len(ids), self.spare_fed + PREFILL_CHUNK))
        begin = self.start if self.runner.length == 0 else self.fed
        upto = min(len(ids), begin + PREFILL_CHUNK)
        self.fill(ids, upto)
        self.refilling = upto < len(ids)
        return self.refilling

    def _catch_up(self, ids: list[int]) -> bool:
        """Feed the serving cache ``PREFILL_CHUNK`` of the ids appended without a model call
        (a recalled phrase's notes), while the stream fits its window: else the next chord
        change pays for them. True if any were fed."""
        if self.runner.length == 0 or self.fed >= len(ids) or self._full(ids, 0):
            return False
        self.fill(ids, min(len(ids), self.fed + PREFILL_CHUNK))
        return True

    def _refill(self, ids: list[int], upto: int) -> bool:
        """Feed the twin cache up to ``ids[:upto]``; once it holds the whole stream, it
        becomes the cache. True while the refill goes on."""
        spare = self.spare
        todo = self.prefix + ids[self.spare_start:upto] if spare.length == 0 else ids[self.spare_fed:upto]
        if todo:
            self.spare_last = spare.feed(todo)
        self.spare_fed = max(self.spare_fed, upto)
        if self.spare_fed < len(ids):
            return True
        self.runner, self.spare = spare, self.runner
        self.start, self.fed, self.last = self.spare_start, self.spare_fed, self.spare_last
        self._stop_refill()
        return False

    def _stop_refill(self) -> None:
        self.refilling = False
        self.spare_start = self.spare_fed = 0
        self.spare_last: np.ndarray | None = None

    def forget_from(self, k: int) -> None:
        """The stream's ids from index ``k`` on changed or are gone: drop them from the cache."""
        if self.spare is not None and self.refilling and self.spare_fed > k:
            if k - 1 >= self.spare_start and self.spare.length > 0:
                self.spare.trim(self.spare_fed - k + 1)  # as below: the last kept id is fed again
                self.spare_fed = k - 1
            else:
                self._stop_refill()  # the new window's start is gone: the next prepare slides again
        if self.fed <= k:
            return  # none of them reached the cache
        if k - 1 >= self.start and self.runner.length > 0:
            # drop one more and feed it again: its logits are the ones to sample from next
            self.runner.trim(self.fed - k + 1)
            self.fed = k - 1
        else:
            self.runner.reset()
            self.start = self.fed = 0
        self.last = None
