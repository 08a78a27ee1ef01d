"""The neural melody model: a token stream in riffd's REMI vocabulary, continued by a
transformer behind a runner (mlx or onnx), spoken through the melody model protocol.

The stream is what the model was trained on (riffd.models.dataset): BOS, Style, then per
bar ``Bar TimeSig``, and per event ``Position [Tempo] [Chord] [Pitch Velocity Duration]``.
Bar, TimeSig, Tempo and Chord tokens are forced from the preset and the chord timeline,
Velocity from the preset's velocity and the metric accent; the model samples Position,
Bar, Pitch and Duration, each from the ids the grammar allows there
(riffd.models.sampling), so every output decodes to notes.

A runner keeps the KV cache: ``feed(ids)`` appends ids and returns the logits after the
last one (shape (vocab,)); ``trim(n)`` drops the last ``n``; ``reset()`` empties it;
``length`` is the number of ids held. ``rollback`` truncates the cache to the tokens
before the beat; a missed deadline hands the rest of the request to the rules model,
whose notes enter the stream as forced tokens (counted in ``fallbacks``).
"""
from __future__ import annotations

import bisect
import math
import sys
import time
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np

from .protocol import Context, MelodyModel, MelodyNote
from .rules import RulesModel
from .sampling import CHORD_TONE_NATS, Groups, sample
from .theory import strength, swing_offset
from .tokens import STYLES, Vocab

POS_PER_BEAT = 12  # Position steps per beat of the meter's denominator (tokens.CONFIG)


@dataclass(frozen=True)
class StreamState:
    """Where the stream is: ``bar`` index (-1 before the first), last ``pos`` in the bar
    (-1 none), the beat of the last Chord token, and what the grammar ``expect``s next."""
    bar: int = -1
    pos: int = -1
    chord_beat: float = -math.inf
    expect: str = "event"  # event | pitch | duration


class NeuralModel(MelodyModel):
    """A transformer melody model; ``runner`` holds the weights and KV cache,
    ``max_context`` is the longest window it was trained on (tokens)."""

    def __init__(self, runner, vocab: Vocab, max_context: int = 256, name: str = "neural"):
        self.runner, self.vocab, self.max_context, self.name = runner, vocab, max_context, name
        self.groups = Groups.of(vocab)
        self.fallbacks = 0
        self.errors = 0

    # -- protocol ---------------------------------------------------------------------
    def start(self, context: Context) -> None:
        num, den = context.preset.meter
        if (num, den) not in self.groups.time_signatures:
            raise ValueError(f"meter {num}/{den} is not in the model's vocabulary")
        self.num, self.den = num, den
        self.qpb = POS_PER_BEAT * den / 4  # positions per quarter-note beat
        self.bar_beats = num * 4 / den
        self.bar_positions = num * POS_PER_BEAT
        style = context.preset.style if context.preset.style in STYLES else "user"
        self.prefix = [self.groups.bos, self.vocab.style_id(style)]
        self.ids: list[int] = []
        self.times: list[float] = []
        self.states: list[StreamState] = []
        self.state = StreamState()
        self.ws = self.fed = 0  # the cache holds prefix + ids[ws:fed]
        self._last = None
        self.runner.reset()
        self._rules = RulesModel()
        super().start(context)
        self._rules.start(Context(context.preset, seed=context.seed, start_beat=context.start_beat))

    def generate(self, until_beat: float, deadline_s: float | None = None) -> Iterator[MelodyNote]:
        """As MelodyModel.generate; past ``deadline_s`` the rules model plays the rest.
        A failure of the runner (an onnxruntime error, say) is reported once on stderr,
        counted in ``errors``, and the rules model plays the rest from a fresh stream."""
        while self.cursor < until_beat - 1e-9:
            if deadline_s is not None and time.monotonic() > deadline_s:
                yield from self._fallback(until_beat)
                return
            try:
                notes = self._next_notes()
            except Exception as exc:  # keep playing: the daemon must not stop on a model fault
                self.errors += 1
                if self.errors == 1:
                    print(f"riffd: {self.name} model failed ({type(exc).__name__}: {exc}); "
                          "the rules model plays on", file=sys.stderr)
                self._restart_stream()
                yield from self._fallback(until_beat)
                return
            for note in notes:
                self.generated.append(note)
                yield note

    def _after_rollback(self) -> None:
        k = bisect.bisect_left(self.times, self.cursor - 1e-9)
        if k == len(self.ids):
            return
        del self.ids[k:], self.times[k:], self.states[k:]
        self.state = self.states[-1] if self.states else StreamState()
        if self.fed < k:
            return  # none of the dropped tokens reached the cache
        if k - 1 >= self.ws and self.runner.length > 0:
            # drop one more and feed it again: its logits are the ones to sample from next
            self.runner.trim(self.fed - k + 1)
            self.fed = k - 1
        else:
            self.runner.reset()
            self.ws = self.fed = 0
        self._last = None

    # -- the stream -------------------------------------------------------------------
    def _push(self, token: int, beat: float, state: StreamState) -> None:
        self.ids.append(int(token))
        self.times.append(beat)
        self.states.append(state)
        self.state = state

    def _logits(self) -> np.ndarray:
        if len(self.prefix) + len(self.ids) - self.ws > self.max_context:
            self._slide()
        if self.runner.length == 0:
            todo = self.prefix + self.ids[self.ws:]
        else:
            todo = self.ids[self.fed:]
        if todo or self._last is None:
            self._last = self.runner.feed(todo)
        self.fed = len(self.ids)
        return self._last

    def _slide(self) -> None:
        """Keep the newest bars (about 3/4 of the window), from a Bar token on."""
        budget = self.max_context * 3 // 4 - len(self.prefix)
        first = len(self.ids) - budget
        bars = [i for i in range(first, len(self.ids)) if self.ids[i] == self.groups.bar]
        self.ws = bars[0] if bars else first
        self.runner.reset()

    def _bar_start(self, bar: int) -> float:
        return bar * self.bar_beats

    def _beat_of(self, bar: int, pos: int) -> float:
        return self._bar_start(bar) + pos / self.qpb

    def _pending_chord(self):
        """(beat, Chord) of the first chord change not yet in the stream, or None; of the
        changes already behind the cursor only the last one counts."""
        i = bisect.bisect_right(self._chord_beats, self.state.chord_beat + 1e-9)
        i = max(i, bisect.bisect_right(self._chord_beats, self.cursor + 1e-9) - 1)
        while i < len(self._chords) and self._chords[i] is None:
            i += 1
        return (self._chord_beats[i], self._chords[i]) if i < len(self._chords) else None

    def _restart_stream(self) -> None:
        self.ids.clear()
        self.times.clear()
        self.states.clear()
        self.state = StreamState()
        self.ws = self.fed = 0
        self._last = None
        self.runner.reset()

    def _open_bar(self, bar: int) -> None:
        g, s = self.groups, self.state
        beat = self._bar_start(bar)
        self._push(g.bar, beat, replace(s, bar=bar, pos=-1, expect="event"))
        self._push(g.time_signatures[(self.num, self.den)], beat, self.state)

    def _begin(self) -> None:
        """Bar, TimeSig, Position_0 and the preset's Tempo open the stream."""
        bar = int(math.floor(self.cursor / self.bar_beats + 1e-9))
        self._open_bar(bar)
        beat = self._bar_start(bar)
        self._push(self.groups.positions[0], beat, replace(self.state, pos=0))
        self._push(self.groups.tempo(self.preset.tempo), beat, self.state)

    def _chord_token(self, beat: float, chord) -> int:
        return self.vocab.chord_id(chord.root, chord.quality)

    def _next_notes(self) -> list[MelodyNote]:
        start = self.cursor
        for _ in range(256):  # each pass forces or samples one token
            note = self._step()
            if note is not None:
                return [note]
            if self.cursor > start + 1e-9:
                return []
        raise RuntimeError("the token stream made no progress")  # the grammar rules this out

    def _step(self) -> MelodyNote | None:
        s = self.state
        if s.bar < 0:
            self._begin()
            return None
        if s.expect == "duration":
            return self._finish_note()
        if s.expect == "pitch":
            if self._beat_of(s.bar, s.pos) >= self.cursor - 1e-9:
                self._sample_pitch()
                return None
            self.state = replace(s, expect="event")  # a position a rollback left behind
        return self._event()

    def _event(self) -> None:
        s, g = self.state, self.groups
        if self.cursor >= self._bar_start(s.bar + 3):
            # the song jumped ahead (song position, a long pause): start a fresh stream there
            self._restart_stream()
            return None
        bar_start = self._bar_start(s.bar)
        pending = self._pending_chord()
        qf = None
        if pending is not None:
            qf = math.ceil((max(pending[0], self.cursor, bar_start) - bar_start) * self.qpb - 1e-6)
            if qf == s.pos:  # the chord starts where the stream already is
                self._push(self._chord_token(*pending), self._beat_of(s.bar, qf),
                           replace(s, chord_beat=pending[0], expect="pitch"))
                return None
            qf = max(qf, s.pos + 1)
        q_lo = max(s.pos + 1, math.ceil((self.cursor - bar_start) * self.qpb - 1e-6))
        in_bar = qf is not None and qf < self.bar_positions
        q_hi = qf if in_bar else self.bar_positions - 1
        qs = np.arange(q_lo, q_hi + 1)
        steps = qs * self.preset.grid / self.qpb
        on_grid = np.abs(steps - np.round(steps)) < 1e-6
        if in_bar:
            on_grid |= qs == qf  # the chord's own position is always reachable
        allowed = list(g.positions[qs[on_grid]]) if len(qs) else []
        if not in_bar:
            allowed.append(g.bar)
        if len(allowed) == 1:  # forced (a chord to reach, or the bar is over): no model call
            token = allowed[0]
        else:
            token = sample(self._logits(), np.array(allowed), self.rng, self.preset.temperature,
                           self.preset.top_p)
        if token == g.bar:
            self._open_bar(s.bar + 1)
            self.cursor = max(self.cursor, self._bar_start(s.bar + 1))
            return None
        q = int(np.nonzero(g.positions == token)[0][0])  # a Position
        beat = self._beat_of(s.bar, q)
        self.cursor = max(self.cursor, beat)
        self._push(token, beat, replace(s, pos=q, expect="pitch"))
        if in_bar and q == qf:
            self._push(self._chord_token(*pending), beat,
                       replace(self.state, chord_beat=pending[0], expect="pitch"))
        return None

    def _pitch_ids(self) -> np.ndarray:
        low, high = self.preset.register
        ids = self.groups.pitches[low:high + 1]
        return ids[ids >= 0]

    def _pitch_bias(self, beat: float, pitch_ids: np.ndarray) -> np.ndarray:
        """Logit bias (nats) for ``pitch_ids`` at ``beat``: the preset's chord-tone bias
        on chord tones, on beats and chord changes."""
        chord = self.chord_at(beat)
        if chord is None or not (self.changes_at(beat) or strength(beat, self.bar_beats) >= 2):
            return np.zeros(len(pitch_ids))
        pcs = self.groups.pitch_of[pitch_ids] % 12
        return CHORD_TONE_NATS * self.preset.chord_tone_bias * np.isin(pcs, list(chord.tones))

    def _sample_pitch(self) -> None:
        s = self.state
        beat = self._beat_of(s.bar, s.pos)
        allowed = self._pitch_ids()
        token = sample(self._logits(), allowed, self.rng, self.preset.temperature, self.preset.top_p,
                       self._pitch_bias(beat, allowed))
        self._push_pitch(token, beat)

    def _velocity(self, beat: float) -> int:
        """The preset's velocity with a metric accent, as the rules model plays it."""
        accent = (12, 0, 4, 8)[strength(beat, self.bar_beats)]
        return int(np.clip(self.preset.velocity - 8 + accent, 1, 127))

    def _push_pitch(self, token: int, beat: float) -> None:
        """A Pitch and its Velocity. The velocity is forced, not sampled: the corpus has no
        dynamics (one velocity per piece, plus augmentation jitter), and feeding the two
        together saves one model call per note."""
        s = replace(self.state, expect="duration")
        self._push(token, beat, s)
        self._push(self.groups.velocity(self._velocity(beat)), beat, s)

    def _finish_note(self) -> MelodyNote:
        s, g = self.state, self.groups
        beat = self._beat_of(s.bar, s.pos)
        token = sample(self._logits(), g.durations, self.rng, self.preset.temperature, self.preset.top_p)
        self._push(token, beat, replace(s, expect="event"))
        pitch = int(self.groups.pitch_of[self.ids[-3]])
        duration = float(g.duration_beats[np.nonzero(g.durations == token)[0][0]]) * 4 / self.den
        self.cursor = max(self.cursor, beat + 1 / self.qpb)
        shift = swing_offset(beat, self.preset.grid, self.preset.swing)
        return MelodyNote(beat + shift, max(duration - shift, 1 / self.qpb), pitch, self._velocity(beat))

    # -- the rules model takes over a missed deadline ---------------------------------
    def _fallback(self, until_beat: float) -> Iterator[MelodyNote]:
        self.fallbacks += 1
        r = self._rules
        r.preset, r.rng, r.cursor = self.preset, self.rng, self.cursor
        r._chord_beats, r._chords = self._chord_beats, self._chords
        r.generated, r.player_notes = self.generated, self.player_notes
        if self.state.bar < 0:
            self._begin()
        while r.cursor < until_beat - 1e-9:
            for note in r._next_notes():
                self._force_note(note)
                yield note
        self.cursor = r.cursor

    def _force_note(self, note: MelodyNote) -> None:
        """Append a note the model did not choose (a fallback) as tokens."""
        g = self.groups
        beat = note.start - swing_offset(note.start, self.preset.grid, self.preset.swing)
        while math.floor(beat / self.bar_beats + 1e-9) > self.state.bar:
            self._open_bar(self.state.bar + 1)
        bar_start = self._bar_start(self.state.bar)
        q = int(round((beat - bar_start) * self.qpb))
        while (pending := self._pending_chord()) is not None and pending[0] <= beat + 1e-9:
            qc = min(max(math.ceil((pending[0] - bar_start) * self.qpb - 1e-6), self.state.pos), q)
            if qc > self.state.pos:
                self._push(g.positions[qc], self._beat_of(self.state.bar, qc),
                           replace(self.state, pos=qc, expect="pitch"))
            self._push(self._chord_token(*pending), self._beat_of(self.state.bar, self.state.pos),
                       replace(self.state, chord_beat=pending[0], expect="pitch"))
        s = self.state
        if q < s.pos or (q == s.pos and s.expect != "pitch"):
            return  # no room for it at the tokenizer's resolution
        at = self._beat_of(s.bar, q)
        if q > s.pos:
            self._push(g.positions[q], at, replace(s, pos=q, expect="pitch"))
        s = replace(self.state, expect="duration")
        self._push(g.pitches[min(max(note.pitch, 21), 108)], at, s)
        self._push(g.velocity(note.velocity), at, s)
        self._push(g.duration(note.duration * self.den / 4), at, replace(s, expect="event"))
