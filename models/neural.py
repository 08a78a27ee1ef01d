"""The neural melody model: a token stream in riffd's REMI vocabulary, continued by a
transformer behind a runner (mlx or onnx), spoken through the melody model protocol.

The stream is what the model was trained on (riffd.models.training.dataset): BOS, Style,
then per bar ``Bar TimeSig``, and per event ``Position [Tempo] [Chord] [Pitch Velocity
Duration]``, written by the REMI kernel that encodes the dataset (``cython_ext/remi.py``'s
``Stream``, token by token), so live and batch streams are equal. Bar, TimeSig, Tempo and
Chord tokens are forced from the preset and the chord timeline (a chord equal to the one
before adds no token, as in the dataset), Velocity is ``STREAM_VELOCITY`` whatever the
note's accent; the model samples Position, Bar, Pitch and Duration from the ids the
grammar allows (models/sampling.py; pitch and rhythm biased by the preset: pitch_bias,
models/density.py): one voice, no Position before the sounding note's end but a chord
change's. A runner (models/backends.py) keeps the KV cache; ``rollback`` truncates it to
the tokens before the beat. A missed deadline hands the rest to the rules model (``fallbacks``).
"""
from __future__ import annotations

import bisect
import logging
import math
import time
from dataclasses import replace
from typing import Iterator

import numpy as np

from riffd.music.theory import strength, swing_offset, velocity as note_velocity

from .calibration import duration_bin
from .density import gap_bias, tilt_now
from .protocol import HEARD_BARS, Context, MelodyModel, MelodyNote, MeterError
from .remi import QUALITY_INDEX, RemiTokenizer
from .stream_edits import StreamEdits
from .rules import RulesModel
from .sampling import Groups, StreamState, pitch_bias, sample
from .tokens import STREAM_VELOCITY, STYLES, Vocab
from .window import Window

POS_PER_BEAT = 12  # Position steps per beat of the meter's denominator (tokens.CONFIG)
log = logging.getLogger("riffd.models")


class NeuralModel(StreamEdits, MelodyModel):
    """A transformer melody model; ``runner`` holds the weights and KV cache,
    ``max_context`` is the longest window it was trained on (tokens), ``calibration`` its
    checkpoint's pitch corrections (models/calibration.py; None when it has none)."""
    runner = property(lambda self: self.window.runner, doc="The runner serving now (models/window.py swaps twins).")

    def __init__(self, runner, vocab: Vocab, max_context: int = 256, name: str = "neural", calibration=None):
        self.vocab, self.max_context, self.name, self.calibration = vocab, max_context, name, calibration
        self.tok = RemiTokenizer(vocab)
        self.tables = self.tok.tables
        self.groups = Groups.of(self.tables, vocab)
        self.window = Window(runner, max_context, self.groups.bar)
        self._duration_ids = set(int(i) for i in self.groups.durations)
        self._position_ids = set(int(i) for i in self.groups.positions)
        self.fallbacks = self.errors = 0

    # -- protocol ---------------------------------------------------------------------
    def start(self, context: Context) -> None:
        num, den = self.vocab.model_meter(*context.preset.meter)  # bars equal, or two to one of the preset's
        if (num, den) not in self.groups.time_signatures:
            known = ", ".join(f"{n}/{d}" for n, d in sorted(self.groups.time_signatures, key=lambda m: (m[1], m[0])))
            raise MeterError(f"meter {num}/{den} is not in the model's vocabulary ({known})")
        self.num, self.den = num, den
        self.qpb = POS_PER_BEAT * den / 4  # positions per quarter-note beat
        self.bar_beats = num * 4 / den
        self.bar_positions = num * POS_PER_BEAT
        style = context.preset.style if context.preset.style in STYLES else "user"
        self.prefix = [self.groups.bos, self.vocab.style_id(style)]
        self._restart_stream()
        self._rules = RulesModel()
        super().start(context)
        self._rules.start(Context(context.preset, seed=context.seed, start_beat=context.start_beat))

    def generate(self, until_beat: float, deadline_s: float | None = None) -> Iterator[MelodyNote]:
        """As MelodyModel.generate; past ``deadline_s`` the rules model plays the rest. A runner's
        failure (onnxruntime's, say) is logged once, counted in ``errors``, and rules play on."""
        while self.cursor < until_beat - 1e-9:
            if deadline_s is not None and time.monotonic() > deadline_s:
                yield from self._fallback(until_beat)
                return
            try:
                notes = self._recall(until_beat)
                notes = self._next_notes() if notes is None else notes
            except Exception as exc:  # keep playing: the daemon must not stop on a model fault
                self.errors += 1
                if self.errors == 1:
                    log.error("%s model failed (%s: %s); the rules model plays on", self.name, type(exc).__name__, exc)
                self._restart_stream()
                yield from self._fallback(until_beat)
                return
            for note in notes:
                self.generated.append(note)
                yield note

    # -- the stream -------------------------------------------------------------------
    def _take(self, beat: float, state: StreamState) -> None:
        """Append the ids the encoder wrote since the last call, at ``beat`` in ``state``;
        only the last of them is a point a rollback can return the encoder to."""
        new = self.enc.take()
        for i, token in enumerate(new):
            self.ids.append(int(token))
            self.times.append(beat)
            self.states.append(state)
            self.enc_states.append(self.enc.state() if i == len(new) - 1 else None)
        self.state = state

    def _tick(self, bar: int, pos: int) -> int:  # the encoder's tick (one per Position)
        return (bar - self.bar0) * self.bar_positions + pos

    def _logits(self) -> np.ndarray:
        return self.window.logits(self.ids)

    def prepare(self) -> bool:
        """Idle work: slide the window and refill the KV cache in chunks ahead of need
        (models/window.py), so that a chord change never waits for a full prefill; True
        while the refill goes on. Batch rendering never calls it."""
        return self.state.bar >= 0 and bool(self.ids) and self.window.prepare(self.ids)

    def warm(self) -> None:
        self.runner.warm()  # a step past the cache's end, not kept

    def _bar_start(self, bar: int) -> float:
        return bar * self.bar_beats

    def _beat_of(self, bar: int, pos: int) -> float:
        return self._bar_start(bar) + pos / self.qpb

    def _pending_chord(self):
        """(beat, Chord) of the first chord change not yet in the stream, or None; of the
        changes already behind the cursor only the last one counts."""
        i = bisect.bisect_right(self._chord_beats, self.state.chord_beat + 1e-9)
        i = max(i, bisect.bisect_right(self._chord_beats, self.cursor + 1e-9) - 1)
        # no chord, or the chord already sounding (no token: the dataset drops repeats)
        while i < len(self._chords) and (self._chords[i] is None
                                         or self._chord_id(self._chords[i]) == self.state.chord_id):
            i += 1
        return (self._chord_beats[i], self._chords[i]) if i < len(self._chords) else None

    def _restart_stream(self) -> None:
        self.ids: list[int] = []
        self.times: list[float] = []
        self.states: list[StreamState] = []
        self.enc_states: list[tuple | None] = []
        self.state = StreamState()
        self.enc = self.tok.stream(self.num, self.den)
        self.bar0 = 0
        self.window.reset(self.prefix)

    def _open_bar(self, bar: int) -> None:
        self.enc.bar()
        self._take(self._bar_start(bar), replace(self.state, bar=bar, pos=-1, expect="event"))

    def _begin(self) -> None:
        """Bar, TimeSig, Position_0 and the preset's Tempo open the stream; then the melody
        of the HEARD_BARS bars before the cursor (``_heard_since``: render --continue's, a
        call the model listened to), with its chords, is forced into it, so that the model
        goes on from it."""
        now = int(math.floor(self.cursor / self.bar_beats + 1e-9))
        heard = self._heard_since(self._bar_start(now - HEARD_BARS))
        bar = int(math.floor(heard[0].start / self.bar_beats + 1e-9)) if heard else now
        self.bar0 = bar
        beat = self._bar_start(bar)
        self.enc.time_signature(0, self.num, self.den)
        self._take(beat, replace(self.state, bar=bar, pos=-1, expect="event"))
        self.enc.token_at(0, self.tables.tempo_id(60e6 / self.preset.tempo))
        self._take(beat, replace(self.state, pos=0))
        self._force_heard(heard)
        while self.state.bar < now:  # a rest after them: the stream goes on from the cursor's bar
            self._open_bar(self.state.bar + 1)

    def _chord_id(self, chord) -> int:
        return self.tables.chord_id(chord.root, QUALITY_INDEX[chord.quality])

    def _reach_chord(self, pos: int, pending) -> None:
        """The Chord token of ``pending`` (beat, Chord) at ``pos`` of the current bar."""
        beat, chord = pending
        token = self._chord_id(chord)
        self.enc.token_at(self._tick(self.state.bar, pos), token)
        self._take(self._beat_of(self.state.bar, pos),
                   replace(self.state, chord_beat=beat, chord_id=token, expect="answer"))
        self.window.early = True  # the next change is a beat or more away: slide now if due

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
        if s.expect in ("pitch", "answer"):
            if self._beat_of(s.bar, s.pos) >= self.cursor - 1e-9 and (s.expect == "pitch" or self._answers()):
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
                self._reach_chord(qf, pending)
                return None
            qf = max(qf, s.pos + 1)
        if (opens := self._answer_opens(bar_start)) is not None and (qf is None or opens < qf):
            qf, pending = opens, None  # reached as a chord is, then a note
        q_lo = max(s.pos + 1, math.ceil((self.cursor - bar_start) * self.qpb - 1e-6))
        in_bar = qf is not None and qf < self.bar_positions
        q_hi = qf if in_bar else self.bar_positions - 1
        qs = np.arange(q_lo, q_hi + 1)
        steps = qs * self.preset.grid / self.qpb
        held = math.ceil((self.generated[-1].end - bar_start) * self.qpb - 1e-6) if self.generated else 0
        on_grid = (np.abs(steps - np.round(steps)) < 1e-6) & (qs >= held)  # one voice
        if in_bar:
            on_grid |= qs == qf  # the chord's own position is always reachable
        allowed = list(g.positions[qs[on_grid]]) if len(qs) else []
        if not in_bar:
            allowed.append(g.bar)
        if len(allowed) == 1:  # forced (a chord to reach, or the bar is over): no model call
            token = allowed[0]
        else:  # density_follow tilts each choice by its gap from the last onset (the Bar's: to the next bar)
            bias = None
            if nats := tilt_now(self, self._bar_start(self.bar0)):
                bias = gap_bias(np.append(self._beat_of(s.bar, qs[on_grid]), self._bar_start(s.bar + 1))[:len(allowed)]
                                - (self.generated[-1].start if self.generated else self.cursor), nats)
            token = sample(self._logits(), np.array(allowed), self.rng, self.preset.temperature, self.preset.top_p,
                           bias)
        if token == g.bar:
            self._open_bar(s.bar + 1)
            self.cursor = max(self.cursor, self._bar_start(s.bar + 1))
            return None
        q = int(np.nonzero(g.positions == token)[0][0])  # a Position
        beat = self._beat_of(s.bar, q)
        self.cursor = max(self.cursor, beat)
        self._position(q)
        if in_bar and q == qf:
            if pending is None:
                self.state = replace(self.state, expect="pitch")
            else:
                self._reach_chord(q, pending)
        return None

    def _answer_opens(self, bar_start: float) -> int | None:
        """The position in this bar of an answer's first beat while it has no note: an
        answer opens there, as a chord change is answered, even when its chord is the one
        sounding (the stream has no token for that); None where the preset lets the model
        rest on changes (``rest_on_changes``), or once the beat is played or passed."""
        start = self.answer_start
        if start is None or self.preset.rest_on_changes > 0 or self.cursor > start + 1e-9 \
                or (self.generated and self.generated[-1].start > start - 1e-9):
            return None
        q = math.ceil((start - bar_start) * self.qpb - 1e-6)
        return q if self.state.pos < q < self.bar_positions else None

    def _answers(self) -> bool:
        """After a Chord token: whether a note sounds on the change. A rest's chance is the
        model's (a later Position or the Bar against a pitch) times ``rest_on_changes``; if
        the model's last note still sounds (it chose to hold before it knew of the change;
        live, the rollback has cut it), that key alone."""
        if self.preset.rest_on_changes <= 0.0:
            return True
        if self.generated and self.generated[-1].end > self._beat_of(self.state.bar, self.state.pos) + 1e-6:
            return self.rng.random() >= self.preset.rest_on_changes
        z = self._logits() / max(self.preset.temperature, 0.05)
        rests = np.append(self.groups.positions[self.state.pos + 1:], self.groups.bar)
        pitch, rest = np.logaddexp.reduce(z[self._pitch_ids()]), np.logaddexp.reduce(z[rests])
        return self.rng.random() >= self.preset.rest_on_changes / (1.0 + math.exp(pitch - rest))

    def _pitch_ids(self) -> np.ndarray:
        low, high = self.preset.register
        ids = self.groups.pitches[low:high + 1]
        return ids[ids >= 0]

    def _pitch_bias(self, beat: float, pitch_ids: np.ndarray) -> np.ndarray:
        """Logit bias (nats) for ``pitch_ids`` at ``beat`` (sampling.pitch_bias)."""
        chord, cal = self.chord_at(beat), self.calibration
        on_beat = chord is not None and (self.changes_at(beat) or strength(beat, self.bar_beats) >= 2)
        line = self.recent_pitches() if cal is not None and cal.reads_line else None  # only a table that reads it
        return pitch_bias(self.groups.pitch_of[pitch_ids], chord, on_beat, self.previous_pitch(), self.preset, cal, line)

    def _sample_pitch(self) -> None:
        s = self.state
        beat = self._beat_of(s.bar, s.pos)
        allowed = self._pitch_ids()
        token = sample(self._logits(), allowed, self.rng, self.preset.temperature, self.preset.top_p,
                       self._pitch_bias(beat, allowed))
        self._push_pitch(token, beat)
        if self.on_onset is not None:  # the Duration costs one more model call: tell now
            shift = self._swing(beat)
            self.on_onset(beat + shift, int(self.groups.pitch_of[token]), self._velocity(beat))

    def _swing(self, beat: float) -> float:
        """The preset's swing delay (beats) of a note on the grid at ``beat``."""
        return swing_offset(beat, self.preset.grid, self.preset.swing)

    def _velocity(self, beat: float) -> int:
        """The preset's velocity with a metric accent, as every model plays it."""
        return note_velocity(self.preset.velocity, strength(beat, self.bar_beats))

    def _push_pitch(self, token: int, beat: float) -> None:
        """A Pitch and its Velocity (forced: fed together, they save one model call a note)."""
        self._note_tokens(int(self.groups.pitch_of[token]), beat)

    def _note_tokens(self, pitch: int, beat: float) -> None:
        self.enc.pitch_velocity(pitch, self.tables.vel_bin[STREAM_VELOCITY])
        self._take(beat, replace(self.state, expect="duration"))

    def _position(self, q: int) -> None:
        self.enc.position(self._tick(self.state.bar, q))
        self._take(self._beat_of(self.state.bar, q), replace(self.state, pos=q, expect="pitch"))

    def _finish_note(self) -> MelodyNote:
        s, g = self.state, self.groups
        beat = self._beat_of(s.bar, s.pos)
        bias = None if self.calibration is None else self.calibration.duration_bias(len(g.durations))
        if nats := tilt_now(self, self._bar_start(self.bar0)):  # density_follow: by the note's length
            bias = (0.0 if bias is None else bias) + gap_bias(g.duration_beats * 4 / self.den, nats)
        token = sample(self._logits(), g.durations, self.rng, self.preset.temperature, self.preset.top_p, bias)
        k = int(np.nonzero(g.durations == token)[0][0])  # the Duration bin
        self.enc.duration(k)
        self._take(beat, replace(s, expect="event"))
        pitch = int(self.groups.pitch_of[self.ids[-3]])
        duration = float(g.duration_beats[k]) * 4 / self.den
        self.cursor = max(self.cursor, beat + 1 / self.qpb)
        shift = self._swing(beat)
        return MelodyNote(beat + shift, max(duration - shift, 1 / self.qpb), pitch, self._velocity(beat))

    # -- the rules model takes over a missed deadline ---------------------------------
    def _fallback(self, until_beat: float) -> Iterator[MelodyNote]:
        self.fallbacks += 1
        r = self._rules
        r.follow(self)
        if self.state.bar < 0:
            self._begin()
        while r.cursor < until_beat - 1e-9:
            for note in r.step():
                self._force_note(note)
                self.generated.append(note)
                yield note
        self.cursor = r.cursor

    def _accept(self, note: MelodyNote) -> None:
        if self.state.bar < 0:
            self._begin()
        self._force_note(note)

    def _force_note(self, note: MelodyNote) -> None:
        """Append a note the model did not choose (a fallback, a recall, a given melody) as
        tokens, each chord change before it in its own bar."""
        # on the tokenizer's grid first: a key a hair before a bar line is on it, not at that bar's position 48
        beat = round((note.start - self._swing(note.start)) * self.qpb) / self.qpb
        while True:
            last = math.floor(beat / self.bar_beats + 1e-9) <= self.state.bar  # the note's own bar
            bar_start = self._bar_start(self.state.bar)
            q = int(round((beat - bar_start) * self.qpb)) if last else self.bar_positions - 1
            until = beat if last else self._bar_start(self.state.bar + 1) - 1e-6
            while (pending := self._pending_chord()) is not None and pending[0] <= until + 1e-9:
                qc = min(max(math.ceil((pending[0] - bar_start) * self.qpb - 1e-6), self.state.pos, 0), q)
                if qc > self.state.pos:
                    self._position(qc)
                self._reach_chord(self.state.pos, pending)
            if last:
                break
            self._open_bar(self.state.bar + 1)
        s = self.state
        if q < s.pos or (q == s.pos and s.expect not in ("pitch", "answer")):
            return  # no room for it at the tokenizer's resolution
        at = self._beat_of(s.bar, q)
        if q > s.pos:
            self._position(q)
        self._note_tokens(min(max(note.pitch, 21), 108), at)
        self.enc.duration(self._duration_bin(at, note.end))
        self._take(at, replace(self.state, expect="event"))

    def _duration_bin(self, beat: float, end: float) -> int:
        """The Duration bin of a note from ``beat`` (unswung) to ``end``: a swung note's token holds its delay."""
        return duration_bin(self.tables, end - beat, self.den)
