"""The melody model protocol, shared by every backend (rules, markov, mlx, onnx).

Shaped for live use (after DESIGN.md, "The melody model protocol"):

- ``start(context)``: meter, tempo, preset, seed, and the chords and notes so far.
- ``extend(events)``: append what the player did: ``ChordAt`` (a chord from a beat on)
  or ``MelodyNote`` (a note the player played).
- ``generate(until_beat, deadline_s)``: yield melody notes in start order until the
  cursor reaches ``until_beat`` or ``time.monotonic()`` passes ``deadline_s``.
- ``rollback(beat)``: forget what was generated from ``beat`` on; the next note starts
  there.
- ``release(pitch, beat)``: the player let go of a key: the note it began ends there.
- ``answer(call, start, end)``: the notes from ``start`` answer the player's call
  (call-response); the form may bring the call back.
- ``prepare()``: one bounded piece of idle work that makes the next call cheaper (a
  neural model refills its KV cache ahead of need); True while more remains.

Batch rendering is the same calls with every chord known in advance. Units: beats are
quarter notes from the song start; pitches are MIDI numbers; velocities 1-127.
"""
from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from riffd.music.chords import Chord, parse_chord
from riffd.presets import Preset

from .calibration import RECENT_NOTES
from .form import MEMORY_SPANS, SPAN_BARS, Form

HEARD_BARS = 4  # bars of a given melody the transformer hears before it goes on (Context.notes): a phrase
MAX_CALL_KEYS = 256  # the keys of a call an answer may bring back: its last ones (16 bars of sixteenths)
RELEASE_LOOKBACK = 16  # a note-off finds its key among the player's last notes: live, they only grow
GIVEN_STEPS = 12  # a beat's steps: a given note comes back (models/form.py) on the grid of REMI's quarter note


@dataclass(frozen=True, slots=True)
class MelodyNote:
    """One note: ``start`` and ``duration`` in beats."""
    start: float
    duration: float
    pitch: int
    velocity: int

    @property
    def end(self) -> float:
        return self.start + self.duration


def _start(note: MelodyNote) -> float:
    return note.start


def _on_grid(note: MelodyNote) -> MelodyNote:
    """``note`` with its start and end on GIVEN_STEPS a beat (a played file's timing; one step at least)."""
    start = round(note.start * GIVEN_STEPS) / GIVEN_STEPS
    end = max(round(note.end * GIVEN_STEPS) / GIVEN_STEPS, start + 1 / GIVEN_STEPS)
    return MelodyNote(start, end - start, note.pitch, note.velocity)


def one_voice(notes: Iterable[MelodyNote]) -> list[MelodyNote]:
    """``notes`` as one voice, in start order: a note that outlasts the next one's onset
    ends there (a player releases a key to play the next; a sampled Duration may reach
    past the next Position), and of notes starting together the first is kept."""
    ordered = sorted(notes, key=lambda n: n.start)  # stable: the first of a tie stays first
    out: list[MelodyNote] = []
    for note in ordered:
        if out and note.start <= out[-1].start + 1e-9:
            continue
        if out and out[-1].end > note.start + 1e-9:
            last = out[-1]
            out[-1] = MelodyNote(last.start, note.start - last.start, last.pitch, last.velocity)
        out.append(note)
    return out


@dataclass(frozen=True, slots=True)
class ChordAt:
    """``chord`` sounds from ``beat`` until the next ChordAt; None is "no chord"."""
    beat: float
    chord: Chord | None


class MeterError(ValueError):
    """A meter a model cannot play: the transformer knows the meters of its vocabulary."""


@dataclass
class Context:
    """What a model starts from."""
    preset: Preset
    seed: int | None = None
    start_beat: float = 0.0
    chords: list[ChordAt] = field(default_factory=list)
    notes: list[MelodyNote] = field(default_factory=list)
    heard_since: float = float("-inf")  # beats: notes before it lie in another meter's bars: not heard nor recalled


class MelodyModel:
    """Base class: keeps the chord timeline, the generated notes and the cursor.

    A backend overrides ``_next_notes()``, which returns the next notes from
    ``self.cursor`` and advances it (at least one grid step per call).

    ``on_onset(start, pitch, velocity)`` (beats, MIDI numbers), if set, is called by a
    backend that chooses a note's length after its pitch (the transformer samples a
    Duration token with one more model call) as soon as the start and pitch are
    chosen: live, a note already due can then sound without waiting for its length.
    The note itself still comes from ``generate``, with the same start and pitch.
    """

    name = "base"
    on_onset: Callable[[float, int, int], None] | None = None

    def start(self, context: Context) -> None:
        self.preset = context.preset
        self.rng = np.random.default_rng(context.seed)
        self._chord_beats: list[float] = []
        self._chords: list[Chord | None] = []
        self.player_notes: list[MelodyNote] = []
        self._let_go: dict[int, float] = {}  # pitch -> beat of a note-off that found no held key (release)
        self.heard_since = context.heard_since  # notes before it lie in another meter's bars
        # the melody it goes on from (--continue's), in this meter's bars
        self.given = one_voice(_on_grid(n) for n in context.notes if n.start >= self.heard_since - 1e-9)
        self.generated: list[MelodyNote] = []
        self.cursor = self.playing_from = context.start_beat
        self.answer_start: float | None = None  # the first beat of the latest answer to a call
        # recall decisions draw apart from the model's sampling (models/form.py)
        self.form = Form(self, np.random.default_rng(None if context.seed is None else [context.seed, 7]))
        self.extend([*context.chords, *context.notes])

    def extend(self, events: Iterable[ChordAt | MelodyNote]) -> None:
        for event in events:
            if isinstance(event, ChordAt):
                i = bisect.bisect_left(self._chord_beats, event.beat)
                if i < len(self._chord_beats) and self._chord_beats[i] == event.beat:
                    self._chords[i] = event.chord
                else:
                    self._chord_beats.insert(i, event.beat)
                    self._chords.insert(i, event.chord)
            else:
                let_go = self._let_go.pop(event.pitch, None) if event.duration == math.inf else None
                if let_go is not None and let_go > event.start - 1e-9:  # let go before the key was named melody
                    event = MelodyNote(event.start, max(let_go - event.start, 1 / GIVEN_STEPS), event.pitch,
                                       event.velocity)
                self.player_notes.append(event)

    def release(self, pitch: int, beat: float) -> None:
        """The player let go of ``pitch`` (MIDI) at ``beat``: the latest of the player's notes of that
        pitch still held (duration ``math.inf``: a live key's length is unknown at its note-on) ends
        there, a GIVEN_STEPS step long at least; with none (a key let go before the capture named
        it a melody key), the next such note of that pitch ends there. A key never released is
        heard to the next one."""
        for i in range(len(self.player_notes) - 1, max(len(self.player_notes) - RELEASE_LOOKBACK, 0) - 1, -1):
            note = self.player_notes[i]
            if note.pitch == pitch and note.duration == math.inf:
                self.player_notes[i] = MelodyNote(note.start, max(beat - note.start, 1 / GIVEN_STEPS),
                                                  note.pitch, note.velocity)
                return
        self._let_go[pitch] = beat  # a key let go within its strike's window: ``extend`` ends it here

    def keys_between(self, low: float, high: float, last: int | None = None) -> list[MelodyNote]:
        """The player's notes (``player_notes``, of its ``last`` ones if given) with ``low <=
        start < high`` (beats), in one voice (``one_voice``), each ended by ``high``: a key
        sounds to its note-off (``release``); one still held, to the next key or ``high``."""
        notes = self.player_notes if last is None else self.player_notes[-last:]
        return [MelodyNote(n.start, min(n.duration, high - n.start), n.pitch, n.velocity)
                for n in one_voice(n for n in notes if low - 1e-9 <= n.start < high - 1e-9)]

    def answer(self, call: float | None, start: float, end: float) -> None:
        """The notes from ``start`` to ``end`` (beats) answer the player's call: the keys
        played (``extend``) from the cursor to ``start``, whose chords began at ``call``
        (None: at the bar line of its first key) and come again from ``start``
        (daemon/phrasing.answer_plan). Call it before the rollback to ``start``. The form
        may bring the call's tune back (models/form.py, ``Form.answer``)."""
        tune = one_voice(_on_grid(n) for n in self.keys_between(self.cursor, start, MAX_CALL_KEYS))
        if call is None and tune:
            bar = self.preset.beats_per_bar
            call = bar * math.floor(tune[0].start / bar + 1e-9)
        self.answer_start = start
        self.form.answer(start if call is None else call, start, end, tune)

    def chord_at(self, beat: float) -> Chord | None:
        """The chord sounding at ``beat`` (the last one known continues)."""
        i = bisect.bisect_right(self._chord_beats, beat + 1e-9) - 1
        return self._chords[i] if i >= 0 else None

    def changes_at(self, beat: float) -> bool:
        """True if a chord starts exactly at ``beat``: the note there answers the change."""
        i = bisect.bisect_left(self._chord_beats, beat - 1e-9)
        return i < len(self._chord_beats) and abs(self._chord_beats[i] - beat) < 1e-9

    def next_change(self, after: float) -> float | None:
        """The first chord change strictly after ``after``, in beats, or None."""
        i = bisect.bisect_right(self._chord_beats, after + 1e-9)
        return self._chord_beats[i] if i < len(self._chord_beats) else None

    def notes_between(self, low: float, high: float) -> list[MelodyNote]:
        """The generated notes with ``low <= start < high`` (beats), found by bisection:
        ``generated`` is in start order, as notes are played."""
        notes = self.generated
        return notes[bisect.bisect_left(notes, low, key=_start):bisect.bisect_left(notes, high, key=_start)]

    def melody_between(self, low: float, high: float) -> list[MelodyNote]:
        """The melody with ``low <= start < high`` (beats): the given notes (Context.notes)
        before the first it generated, then its own; what a returning progression brings
        back (models/form.py), the given tune's phrases as well as its own."""
        first = self.generated[0].start if self.generated else float("inf")
        given = self.given[bisect.bisect_left(self.given, low, key=_start):
                           bisect.bisect_left(self.given, min(high, first), key=_start)]
        return given + self.notes_between(low, high)

    def played_before(self, beat: float, bars: int = SPAN_BARS * MEMORY_SPANS) -> tuple[list[ChordAt],
                                                                                      list[MelodyNote]]:
        """The chord changes (from the one sounding where they begin) and the melody
        (``melody_between``) of the ``bars`` bars of this model's meter before ``beat``
        (by default as far back as the form's memory reaches), notes cut at ``beat``: what
        a model started at ``beat`` in the same meter goes on from (Context.chords and
        notes): the transformer hears the last HEARD_BARS of them, and a returning
        progression can bring them back (models/form.py)."""
        low = beat - bars * self.preset.beats_per_bar
        i = max(bisect.bisect_right(self._chord_beats, low + 1e-9) - 1, 0)
        j = bisect.bisect_left(self._chord_beats, beat - 1e-9)
        return ([ChordAt(b, c) for b, c in zip(self._chord_beats[i:j], self._chords[i:j])],
                [MelodyNote(n.start, min(n.duration, beat - n.start), n.pitch, n.velocity)
                 for n in self.melody_between(low, beat)])

    def previous_pitch(self) -> int | None:
        """The last pitch heard before the cursor: generated, else the player's."""
        if self.generated:
            return self.generated[-1].pitch
        return self.player_notes[-1].pitch if self.player_notes else None

    def recent_pitches(self) -> list[int]:
        """The line's last RECENT_NOTES pitches (MIDI, oldest first; what a calibration
        reads of it: models/calibration.py): generated, else the player's; [] before any."""
        return [n.pitch for n in self.generated[-RECENT_NOTES:] or self.player_notes[-RECENT_NOTES:]]

    def generate(self, until_beat: float, deadline_s: float | None = None) -> Iterator[MelodyNote]:
        """Yield notes until the cursor reaches ``until_beat`` (beats) or the monotonic
        ``deadline_s`` passes; a later call carries on from where this one stopped."""
        while self.cursor < until_beat - 1e-9:
            if deadline_s is not None and time.monotonic() > deadline_s:
                return
            recalled = self._recall(until_beat)
            for note in self._next_notes() if recalled is None else recalled:
                self.generated.append(note)
                yield note

    def _recall(self, until_beat: float) -> list[MelodyNote] | None:
        """The notes a returning progression brings back from the cursor (models/form.py),
        up to ``until_beat``, handed to ``_accept`` and the cursor moved past them; None
        when the model plays on by itself."""
        found = self.form.recall(self.cursor)
        if found is None:
            return None
        notes, stop = found
        out = [MelodyNote(*n) for n in notes if n[0] < until_beat - 1e-9]
        for note in out:
            self._accept(note)
        # on to the next recalled onset (or the stop), as a model moves a whole note on:
        # the engine plans one step at a time (until = cursor + 1e-6)
        self.cursor = next((n[0] for n in notes if n[0] >= until_beat - 1e-9), stop)
        return out

    def _accept(self, note: MelodyNote) -> None:
        """Hook: a note the model did not choose (a recall) is played next; a backend
        with a state of its own (a token stream) takes it in."""

    def step(self) -> list[MelodyNote]:
        """The next notes from ``cursor`` (possibly none, a rest), advancing the cursor by
        at least one grid step; not recorded in ``generated`` (``generate`` does that)."""
        return self._next_notes()

    def follow(self, leader: "MelodyModel") -> None:
        """Play on from ``leader``'s state, as a fallback does: its preset, random
        generator and cursor, and its chord timeline and notes (shared, not copied)."""
        self.preset, self.rng, self.cursor = leader.preset, leader.rng, leader.cursor
        self._chord_beats, self._chords = leader._chord_beats, leader._chords
        self.generated, self.player_notes, self.given = leader.generated, leader.player_notes, leader.given

    def rollback(self, beat: float) -> None:
        """Forget generated notes that start at or after ``beat``; a kept note that
        reaches past ``beat`` is shortened to end there; the cursor moves to ``beat``.
        A ``beat`` past the cursor skips a stretch the model was not asked to play (a call
        it listened to, a rest): it plays again from there (``playing_from``; a ``beat``
        before that moves it back to ``beat``)."""
        # in place and by bisection: a live session's list only grows, and a fallback
        # model shares it (follow)
        kept = self.generated
        del kept[bisect.bisect_left(kept, beat - 1e-9, key=_start):]
        if kept and kept[-1].end > beat:
            last = kept[-1]
            kept[-1] = MelodyNote(last.start, beat - last.start, last.pitch, last.velocity)
        if beat > self.cursor + 1e-9 or beat < self.playing_from:
            self.playing_from = beat
        self.cursor = beat
        i = bisect.bisect_right(self._chord_beats, beat + 1e-9)
        del self._chord_beats[i:], self._chords[i:]
        self.form.forget_from(beat)
        if self.answer_start is not None and beat < self.answer_start - 1e-6:
            self.answer_start = None  # back before the answer (a jump): it is no longer ahead
        self._after_rollback()

    def prepare(self) -> bool:
        """Do one bounded piece of idle work (at most a few ms) so that the next chord
        change costs less; return True while more remains. The live engine calls it when
        its plan is ahead and no event waits. The base class has nothing to do."""
        return False

    def rehearse(self, preset: Preset) -> None:
        """Play a throwaway phrase (two beats of C, a rollback to beat 1, a change to Am
        there and the re-plan) so that the first real chord change does not pay for first calls; call
        ``start`` next, which forgets the phrase. On the onnx backend the first change of a
        fresh process cost 3.9 ms, against 1.1 ms after a rehearsal (ONNX Runtime's first
        run of each input shape, the cache's bindings; `riffd bench generate`,
        ``first_change_ms_*``). ``on_onset`` is not called meanwhile."""
        hook, self.on_onset = self.on_onset, None
        try:
            self.start(Context(preset, seed=0, chords=[ChordAt(0.0, parse_chord("C"))]))
            list(self.generate(2.0))
            self.rollback(1.0)
            self.extend([ChordAt(1.0, parse_chord("Am"))])
            list(self.generate(2.0))
        finally:
            self.on_onset = hook

    def warm(self) -> None:
        """Touch what the next model call reads (weights, cache) without changing any
        state; the live engine calls it every ``WARM_S`` while it plays and idles."""

    def _after_rollback(self) -> None:
        """Hook for backends with state of their own (a KV cache, a Markov context)."""

    def _next_notes(self) -> list[MelodyNote]:
        raise NotImplementedError
