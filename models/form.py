"""Form: a returning progression brings back the melody played over it.

When a progression comes back, people repeat or vary what they played over it; a
model sampling note by note never does. The memory is the melody (``melody_between``:
the tune it was given to go on from, then its own ``generated`` notes), cut into spans
of ``SPAN_BARS`` bars from beat 0. A span's progression is its
chords relative to the chord at its start: (offset in beats, root interval in
semitones, quality).

At the cursor, in span k: if an earlier span j has the same progression so far (every
chord change of span j up to the cursor's offset, and none that span k lacks), and
either j lies a whole number of ``PHRASE_SPANS`` before k (4 bars in 4/4: at the same
place of its phrase, so a section returns from its first span, and a phrase that opens
on the same kind of chord starts as the one before it did, a sequence) or the span
before j has the progression of the span before k (so a loop comes back from its third
span, any other return from its second), the preset's ``repeat`` is the chance, drawn
at the span, that span j's notes come back (of several such spans: the one whose
whole known progression matches, then the one after the same span, then the latest):
transposed by the root interval between the two spans' first chords (-6 to +5
semitones, then by octaves into the register), rhythm and velocities kept, up to span
j's next chord change, so that the next chord decides whether the recall goes on (live,
the player's next strike re-plans from its beat and the recall is checked again; in
batch the chords are known and checked the same way). A span inside a phrase that
follows a recalled one and matches the span after its source recalls that one without a
new draw: a phrase (the preset's ``recall_bars``: 4 bars, a phrase of a song; 8, a
section of a reel or an air) comes back whole with the ``repeat`` chance, as people
repeat one, not span by span (and a looping progression's phrases still come back one by
one). A chord change is always answered at once: where the earlier span rested at that
change, the model plays the note itself and the recall goes on after it. The last
``ENDING_BEATS`` of a span that ends such a phrase are the model's own: its ending
varies. Live and batch share this code (MelodyModel).

An answer to a player's call (call-response: ``MelodyModel.answer``) replays the call's
changes from its start (daemon/phrasing.answer_plan), so its beats mirror the call's: with
the ``repeat`` chance, drawn once an answer, the call's tune (the player's keys) comes back
where the chords under the two agree, rhythm and velocities kept; past the call's last
note and in its last ENDING_BEATS the answer is the model's own (``_echo``), as a tune's
second phrase takes up its first.
"""
from __future__ import annotations

import numpy as np

from riffd.music.chords import Chord

SPAN_BARS = 2
PHRASE_SPANS = 2  # 4 bars: a phrase of most tunes and songs (half of an 8-bar section)
MEMORY_SPANS = 32  # how far back a return is looked for: 64 bars in 4/4, a whole song's form
ENDING_BEATS = 1.0  # the model's own at the end of a phrase: a phrase comes back, its ending varied


class Form:
    """The form memory of ``model`` (a MelodyModel: its chords, ``generated``, preset);
    ``rng`` draws the recall decisions, apart from the model's own sampling."""

    def __init__(self, model, rng: np.random.Generator):
        self.model, self.rng = model, rng
        self.decided: dict[int, tuple[int, int] | None] = {}  # span -> (source span, shift)
        self.echo: tuple[float, float, float, list] | None = None  # an answer's (call, start, end, tune)

    @property
    def span(self) -> float:
        return SPAN_BARS * self.model.preset.beats_per_bar

    @property
    def phrase_spans(self) -> int:
        """Spans a recall runs once drawn: the preset's ``recall_bars`` in 2-bar spans."""
        return max(1, self.model.preset.recall_bars // SPAN_BARS)

    def _changes(self, lo: float, hi: float) -> tuple[Chord | None, list[tuple]]:
        """The chord at ``lo`` and the known changes in (lo, hi) relative to it."""
        first = self.model.chord_at(lo)
        out, beat = [], self.model.next_change(lo)
        while beat is not None and beat < hi - 1e-9:
            chord = self.model.chord_at(beat)
            rel = None if chord is None or first is None else ((chord.root - first.root) % 12, chord.quality)
            out.append((round(beat - lo, 4), rel))
            beat = self.model.next_change(beat)
        return first, out

    def _progression(self, k: int) -> tuple[Chord | None, list[tuple]]:
        """Span k's first chord and its known changes (``_changes``)."""
        return self._changes(k * self.span, (k + 1) * self.span)

    def _matches(self, k: int, j: int, offset: float, known=None) -> bool:
        """Span k's progression so far (up to ``offset`` beats into it) is span j's;
        ``known`` holds the two progressions when the caller has them already."""
        (first_k, changes_k), (first_j, changes_j) = known or (self._progression(k), self._progression(j))
        if first_k is None or first_j is None or first_k.quality != first_j.quality:
            return False
        return [c for c in changes_k if c[0] <= offset + 1e-9] == [c for c in changes_j if c[0] <= offset + 1e-9]

    def _decide(self, k: int, offset: float) -> tuple[int, int] | None:
        """Once per span: an earlier span j (at most ``MEMORY_SPANS`` back) whose
        progression matches span k's so far and that lies a whole number of phrases
        before k or whose span before matches span k's before (the form, not one chord,
        says the music came back): the one whose whole known progression matches, then
        the one that follows the same span, then the most recent; taken with the preset's
        ``repeat`` chance, or at once where span k is not the first of a recalled phrase
        (``recall_bars``) and span k - 1 recalled span j - 1 (the phrase goes on).
        Returns (j, transposition in semitones) or None."""
        if k not in self.decided:
            self.decided[k] = None
            s, repeat = self.span, self.model.preset.repeat
            if repeat <= 0:
                return None
            ours, before = self._progression(k), self._progression(k - 1)
            if ours[0] is None:
                return None
            best = None  # ((whole match, follows), j)
            for j in range(k - 1, max(k - 1 - MEMORY_SPANS, -1), -1):
                there = self.model.chord_at(j * s)  # a cheap look first: most spans fail here
                if there is None or there.quality != ours[0].quality or not self.model.melody_between(j * s, j * s + s):
                    continue
                theirs = self._progression(j)
                whole = ours[1] == theirs[1]
                if not self._matches(k, j, offset, (ours, theirs)) or (best and (whole, True) <= best[0]):
                    continue
                follows = j > 0 and self._matches(k - 1, j - 1, s, (before, self._progression(j - 1)))
                if (k - j) % PHRASE_SPANS == 0 or follows:
                    if best is None or (whole, follows) > best[0]:
                        best = ((whole, follows), j)
                    if best[0] == (True, True):
                        break  # none fits better; the latest of equals wins
            last = self.decided.get(k - 1)  # what span k - 1 recalled, if anything
            goes_on = best is not None and k % self.phrase_spans != 0 and last is not None and last[0] == best[1] - 1
            if best is not None and (goes_on or self.rng.random() < repeat):
                j = best[1]
                shift = (ours[0].root - self.model.chord_at(j * s).root) % 12
                self.decided[k] = (j, shift - 12 if shift > 5 else shift)
        return self.decided[k]

    def answer(self, call: float, start: float, end: float, tune: list) -> None:
        """From ``start`` to ``end`` (beats) the model answers a call whose chords began at
        ``call`` and come again from ``start``; ``tune``: the call's notes (MelodyNote, one
        voice). With the preset's ``repeat`` chance the tune comes back (``_echo``)."""
        self.echo = (call, start, end, tune) if tune and self.rng.random() < self.model.preset.repeat else None

    def _fold(self, pitch: int) -> int:
        """``pitch`` moved by octaves into the preset's register (where it fits)."""
        low, high = self.model.preset.register
        while pitch < low and pitch + 12 <= high:
            pitch += 12
        while pitch > high and pitch - 12 >= low:
            pitch -= 12
        return pitch

    def _echo(self, cursor: float) -> tuple[list, float] | None:
        """The call's notes from the beat that mirrors ``cursor``, up to the next chord
        change on either side, the call's last note's end or the answer's last
        ENDING_BEATS (notes and stop as ``recall``); None where the chords there differ,
        past the call's end, or at a change where the call rested."""
        call, start, end, tune = self.echo
        source, shift, call_end = call + cursor - start, start - call, min(tune[-1].end, start)
        here, there = self.model.chord_at(cursor), self.model.chord_at(source)
        if cursor >= end - ENDING_BEATS - 1e-9 or source >= call_end - 1e-9 or here is None or there is None \
                or (here.root, here.quality) != (there.root, there.quality):
            return None  # past the call's last note (the silence before the answer is not the call's)
        changes = [self.model.next_change(cursor), self.model.next_change(source)]  # here, and in the call
        here_next = end if changes[0] is None else changes[0]
        there_next = call_end if changes[1] is None else min(changes[1], call_end)
        stop = min(here_next, there_next + shift, end - ENDING_BEATS)
        out = [(n.start + shift, n.duration, self._fold(n.pitch), n.velocity)
               for n in tune if source - 1e-9 <= n.start < stop - shift - 1e-9]
        if not out or (self.model.changes_at(cursor) and abs(out[0][0] - cursor) > 1e-6):
            return None  # nothing to bring back here, or a change the model answers itself
        return out, stop

    def recall(self, cursor: float) -> tuple[list, float] | None:
        """The notes that come back from ``cursor`` on and the beat where the recall
        stops for a new check (notes as (start, duration, pitch, velocity) in beats),
        or None when the model plays on by itself."""
        if self.echo is not None and self.echo[1] - 1e-9 <= cursor < self.echo[2] - 1e-9:
            return self._echo(cursor)  # an answer that takes up its call: the call's notes or its own
        s = self.span
        k = int(np.floor(cursor / s + 1e-9))
        offset = cursor - k * s
        ending = ENDING_BEATS if (k + 1) % self.phrase_spans == 0 else 0.0
        if k < 1 or offset > s - ending - 1e-9:
            return None
        choice = self._decide(k, offset)
        if choice is None:
            return None
        j, shift = choice
        known = (self._progression(k), self._progression(j))
        if not self._matches(k, j, offset, known):
            return None
        stop = min([c[0] for c in known[0][1] + known[1][1] if c[0] > offset + 1e-9] + [s - ending])
        # held on: the next onset ends it
        out = [(n.start - j * s + k * s, n.duration, self._fold(n.pitch + shift), n.velocity)
               for n in self.model.melody_between(j * s + offset - 1e-9, j * s + stop - 1e-9)]
        if self.model.changes_at(cursor) and not any(abs(o[0] - cursor) < 1e-6 for o in out):
            return None  # a chord change is answered at once: the model plays this note itself
        return out, k * s + stop

    def forget_from(self, beat: float) -> None:
        """A rollback to ``beat``: decisions of later spans (and of this one, from its
        downbeat: live, it was drawn before the chord there was struck) are drawn again."""
        if self.echo is not None and abs(beat - self.echo[1]) > 1e-6:
            self.echo = None  # an answer cut short (the player plays again), or done with
        k = int(np.floor(beat / self.span + 1e-9))
        at_start = abs(beat - k * self.span) < 1e-6
        for later in [x for x in self.decided if x > k or (x == k and at_start)]:
            del self.decided[later]
