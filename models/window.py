"""The window of a token stream that a runner's KV cache holds.

A transformer sees at most ``max_context`` tokens (its training window). The window is
``prefix + ids[start:]`` of a stream ``ids`` that only the model appends to (or cuts
back, on a rollback); the KV cache holds ``prefix + ids[start:fed]``. Past the window,
it slides to the newest bars and the cache is filled again. Live, ``prepare`` does that
ahead of need, in idle chunks: a full prefill of ~190 tokens costs ~10 ms of onnx on
one core, which on a chord change was the whole reaction tail. A change that came during
a refill still paid its rest, so the slide is taken early, at the first idle moment after
a Chord token (``early``, set by the owner): the next change is then a beat or more away.
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
    """``runner`` (feed, trim, reset, length) over the stream ``ids`` (a list the owner
    keeps and passes in); ``bar`` is the Bar token's id, where a slid window starts."""

    def __init__(self, runner, max_context: int, bar: int):
        self.runner, self.max_context, self.bar = runner, max_context, bar
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

    def logits(self, ids: list[int]) -> np.ndarray:
        """The logits (shape (vocab,)) after the last of ``ids``, sliding first if the
        window is full."""
        if len(self.prefix) + len(ids) - self.start > self.max_context:
            self.slide(ids, self.keep)
        if self.refilling:
            self.waits += 1
            self.refilling = False
        self.fill(ids, len(ids))
        return self.last

    def fill(self, ids: list[int], upto: int) -> None:
        """Feed the cache up to ``ids[:upto]``."""
        todo = self.prefix + ids[self.start:upto] if self.runner.length == 0 else ids[self.fed:upto]
        if todo or self.last is None:
            self.last = self.runner.feed(todo)
        self.fed = upto

    def slide(self, ids: list[int], keep: int) -> None:
        """Keep the newest bars (about ``keep`` tokens with the prefix), from a Bar on."""
        first = len(ids) - (keep - len(self.prefix))
        bars = [i for i in range(first, len(ids)) if ids[i] == self.bar]
        self.start = bars[0] if bars else first
        self.runner.reset()
        self.fed, self.last = self.start, None

    def prepare(self, ids: list[int]) -> bool:
        """Idle work: slide before the window runs out (to ``KEEP`` tokens, or 5/8 of a
        shorter window; after a Chord token, ``EARLY_ROOM`` sooner) and refill
        ``PREFILL_CHUNK`` tokens per call; True while the refill goes on."""
        room = self.room + (self.early_room if self.early else 0)
        self.early = False
        if not self.refilling and len(self.prefix) + len(ids) - self.start > self.max_context - room:
            self.slide(ids, self.keep)
            self.refilling = True
        if not self.refilling:
            return False
        begin = self.start if self.runner.length == 0 else self.fed
        upto = min(len(ids), begin + PREFILL_CHUNK)
        self.fill(ids, upto)
        self.refilling = upto < len(ids)
        return self.refilling

    def forget_from(self, k: int) -> None:
        """The stream's ids from index ``k`` on changed or are gone: drop them from the cache."""
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
