"""One live session: chords in, a planned melody out, re-planned on every chord change.

The engine runs on one thread: ``handle(event)`` for each event from the bridges and ``poll(now)``
in between. It keeps the model's plan ``lookahead`` beats ahead of the clock; what is scheduled but
not yet sounding is rolled back on a chord change, and a sounding note that clashes with it is cut.

A step that raises (a model fault, a bug) is logged in one line and counted in
``stats["faults"]``; the rules model plays the next ``lookahead`` beats, then the model.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque

from riffd.bridges import events as ev
from riffd.bridges.osctable import OSC_CHANNEL
from riffd.models.protocol import ChordAt, Context, MelodyModel, MelodyNote
from riffd.models.rules import RulesModel
from riffd.music.theory import follow_level
from riffd.presets import Preset

from .capture import ALL_SOUND_OFF_CC, OOM_BEATS, ChordCapture, ChordChange, MelodyKey, Restrike, snap_to_beat
from .clock import InternalClock, MidiClock
from .logs import reason
from .onset import EarlyOnsets
from .phrasing import answer_plan, ended, rest_beat
from .scheduler import Note, Scheduler
from .turns import ANSWER_LEAD_S, Turns

HOLD_MS = 15.0  # the longest a planned note waits for a strike on its beat
HOLD_MARGIN_MS = 4.0  # beyond the strikes' lateness: a JACK period (2.7 ms at 128/48 kHz), a 1 ms poll
IDLE_BARS = 2.0  # let go this long (to the nearest bar line): the accompaniment rests (internal clock: re-anchors)
WARM_S = 0.01  # idle and playing: a warm-up model call this often (MelodyModel.warm; 0: never)
ALL_BUT_DRUMS = frozenset(range(16)) - {ev.DRUM_CHANNEL}
log = logging.getLogger("riffd.daemon")


class Engine:
    """Drives ``model`` from played chords and sends its notes through ``scheduler``.

    ``clock`` is an InternalClock or a MidiClock; ``channel`` is 0-15; ``in_channels`` the input channels (0-15)
    whose keys and pedal count, by default all but channel 10 (keys sent over OSC, ``OSC_CHANNEL``, always count);
    ``now`` returns monotonic seconds; ``input_waiting()`` tells whether events wait to be handled (planning ahead
    then stops between notes); ``early_onsets``: an answer sounds on its pitch, before its length is chosen
    (daemon/onset.py; MIDI out); ``warm_s``: s between warm-ups (0: none); ``send_first``: an answer is sent first
    (OSC alone); ``end_call_cc``: the controller that ends a call (turns.py). ``stats``: changes, re-plans, faults."""

    def __init__(self, model: MelodyModel, preset: Preset, clock: InternalClock | MidiClock,
                 scheduler: Scheduler, channel: int | None = None, mode: str | None = None,
                 lookahead: float = 1.0, seed: int | None = None, hold_ms: float = HOLD_MS,
                 in_channels=ALL_BUT_DRUMS, now=time.monotonic, input_waiting=lambda: False,
                 early_onsets: bool = True, warm_s: float = WARM_S, send_first: bool = False,
                 end_call_cc: int | None = None):
        self.model, self.preset, self.clock, self.scheduler = model, preset, clock, scheduler
        self.channel, self.mode = preset.channel - 1 if channel is None else channel, mode or preset.mode
        self.lookahead, self._now, self.input_waiting, self.warm_s = lookahead, now, input_waiting, warm_s
        # A note on a beat where the player has been striking waits as long as keys came late (at most
        # ``hold_ms``), so that a change replaces it; once a key opens a strike there, until it closes.
        self.max_hold_s, self._strike_phases = hold_ms / 1000.0, deque(maxlen=8)  # the last strikes' bar positions
        self._lateness: deque[float] = deque(maxlen=8)  # s after the beat the last strikes were heard
        self._read_delay = 0.0  # s from the open strike's first key's stamp to its handling here
        self._deferred: tuple[float, float, float] | None = None  # notes from beat [0] to [1] wait, to [2]
        self.capture = ChordCapture(window_s=preset.strike_window_ms / 1000.0)
        scheduler.loudness = self.loud  # each note-on as loud as the player's last strike, when it is sent
        self.in_channels = frozenset(in_channels) | {OSC_CHANNEL}  # keys sent over OSC always count
        self.chord, self.chord_beat, self.planned_until = None, float("-inf"), None  # None: nothing planned yet
        self.last_activity, self.turns = float("-inf"), Turns(end_call_cc)
        self.stats, self.seed, self._resync = Counter(), seed, False  # _resync: rules played the last step
        self.early, self.send_first = EarlyOnsets(scheduler) if early_onsets else None, send_first
        self._plan_beat = self._warmed = float("-inf")
        self._use(model)
        model.start(Context(preset, seed=seed))
        self._spare = RulesModel()
        self._spare.start(Context(preset, seed=seed))

    # -- events ---------------------------------------------------------------------
    def handle(self, event) -> None:
        """Apply one event from a bridge. Never raises: a fault is logged, the rules model plays on."""
        try:
            self._handle(event)
        except Exception as exc:
            self._fault(exc)

    def _handle(self, event) -> None:
        if isinstance(event, (ev.NoteOn, ev.NoteOff, ev.Control)) and event.channel not in self.in_channels:
            return
        if isinstance(event, ev.NoteOn):
            self.last_activity = event.t
            self._interrupt_response(event.t)
            before = self.capture.strike_start
            self._take(self.capture.note_on(event.pitch, event.t, event.velocity, event.channel))
            if self.capture.strike_start != before:
                self._read_delay = max(0.0, self._now() - event.t)
                self._defer_for_strike(event.t)
        elif isinstance(event, ev.NoteOff):
            self.last_activity = event.t
            self.capture.note_off(event.pitch, event.channel)
            if self.clock.running and not self.capture.pedal:  # a melody key's length (pedalled: to the next key)
                self.model.release(event.pitch, self.clock.beat_at(event.t))
        elif isinstance(event, ev.Control):
            held = bool(self.capture.sounding)
            self.capture.control(event.control, event.value, event.channel)  # CC120 forgets keys, pedal and chord
            if held and not self.capture.sounding:  # keys let up (CC123) or the pedal lifted: let go now
                self.last_activity = event.t
            self.turns.control(event.control, event.value)
            if event.control == ALL_SOUND_OFF_CC:  # the player's panic: silent until the next chord
                self.panic()
                self.chord, self.turns = None, Turns(self.turns.end_call_cc)
                if isinstance(self.clock, InternalClock):
                    self.clock.stop(event.t)  # which starts a new phrase on beat 0
        elif isinstance(event, ev.ClockTick):
            self.stats["clock_ticks"] += 1
            if isinstance(self.clock, MidiClock):
                self.clock.tick(event.t)
        elif isinstance(event, ev.Transport):
            self._transport(event)
        elif isinstance(event, ev.SongPosition) and isinstance(self.clock, MidiClock):
            self.clock.song_position(event.sixteenths, event.t)
            self._restart()
        elif isinstance(event, ev.Command) and event.name == "panic":
            self.panic()

    def close_strike(self) -> None:
        """The open strike's keys are all in (a chord sent whole, over OSC): close it now."""
        try:
            self._take(self.capture.close())
        except Exception as exc:
            self._fault(exc)

    def hold_s(self) -> float:
        """How long (s) a planned note on a striking beat waits: ``HOLD_MARGIN_MS`` plus the
        75th percentile of how late the engine heard the last strikes (stamp after the beat, plus
        the read delay: a note sent before sounds the old chord, a flam), at most ``hold_ms``."""
        late = sorted(self._lateness)[(len(self._lateness) - 1) * 3 // 4] if self._lateness else self.max_hold_s
        return min(self.max_hold_s, HOLD_MARGIN_MS / 1000.0 + late)

    def _beats(self, seconds: float) -> float:
        return seconds * self.clock.tempo / 60.0

    def loud(self, velocity: int) -> int:
        """``velocity`` (1-127) as loud as the player plays (music.theory.follow_level, velocity_follow)."""
        return follow_level(velocity, self.capture.level, self.preset.velocity_follow)

    def _defer_for_strike(self, t: float) -> None:
        """A key at ``t`` opened a strike near a striking beat: planned notes from there to
        the end of the strike's window wait for it to close (``_take`` sends or drops them)."""
        if not self.clock.running or self.chord is None:
            return
        heard = self.clock.beat_at(t)
        beat = snap_to_beat(heard, self.preset.strike_tolerance_beats)
        if beat != round(beat) or round(beat % self.preset.beats_per_bar, 3) not in self._strike_phases:
            return
        low, high = heard - self._beats(self.hold_s()), heard + self._beats(self.capture.window_s)
        # they wait out the longest strike (a slow roll's) and a window more: due at its end, they raced its close
        self._deferred = (low, high, heard + self._beats(self.capture.longest_s + self.capture.window_s))
        self.scheduler.move_pending(low, high, self._deferred[2])

    def _take(self, outcome) -> None:
        """Act on a strike: a chord change re-plans, a lone key is melody; notes waiting for it go now, or give way."""
        if outcome is None:
            return
        deferred, self._deferred = self._deferred, None
        if deferred and not isinstance(outcome, ChordChange) and self.clock.running:
            self.scheduler.move_pending(deferred[2], deferred[2], self.clock.beat_at(self._now()))
        if isinstance(outcome, (ChordChange, Restrike)) and self.clock.running:
            heard = self.clock.beat_at(outcome.t)
            beat = snap_to_beat(heard, self.preset.strike_tolerance_beats)
            self._strike_phases.append(round(beat % self.preset.beats_per_bar, 3))
            if abs(heard - round(heard)) <= self.preset.strike_tolerance_beats:
                self._lateness.append(max(0.0, (heard - beat) * 60.0 / self.clock.tempo) + self._read_delay)
                if isinstance(self.clock, InternalClock):  # the player keeps the time: its phase and tempo
                    self.clock.follow(outcome.t, beat)
            if isinstance(outcome, Restrike) and self.mode == "call-response" and self.turns.call.first is None:
                self.turns.heard(beat, self.preset, self.chord)  # the chord sounding, struck again, begins a call
        if isinstance(outcome, ChordChange):  # an oom-pah's chord, named with its bass (a beat late, live)
            self._on_chord(self.capture.over_bass(outcome, OOM_BEATS * 60.0 / self.clock.tempo))
        elif isinstance(outcome, MelodyKey) and self.clock.running:  # held until its note-off (MelodyModel.release)
            self.turns.heard(beat := self.clock.beat_at(outcome.t), self.preset)
            self.model.extend([MelodyNote(beat, math.inf, outcome.pitch, outcome.velocity)])

    def _fault(self, exc: Exception) -> None:
        """Log one line; the rules model plays the next ``lookahead`` beats."""
        self.stats["faults"] += 1
        log.error("engine step failed (%s: %s); the rules model plays on", type(exc).__name__, reason(exc))
        try:
            if self.chord is None or not self.clock.running:
                return
            start = math.ceil(self.clock.beat_at(self._now()) * self.preset.grid) / self.preset.grid
            self.scheduler.cancel_from(start)
            self._spare.rollback(start)
            self._spare.extend([ChordAt(start, self.chord)])
            for note in self._spare.generate(start + self.lookahead):
                self.scheduler.add(Note(note.start, note.end, note.pitch, note.velocity, self.channel))
            self.planned_until, self._resync = start + self.lookahead, True
        except Exception as again:  # the rescue failed too: silence is better than a stuck note
            log.error("the rules model failed as well (%s); waiting for the next chord", again)
            self.planned_until = None

    def _transport(self, event: ev.Transport) -> None:
        if event.kind == "stop":
            self.panic()
            if isinstance(self.clock, MidiClock):
                self.clock.stop(event.t)
            return
        if isinstance(self.clock, MidiClock):
            (self.clock.start if event.kind == "start" else self.clock.resume)(event.t)
            self._restart()

    def _restart(self) -> None:
        """Drop every plan (the song position jumped, an answer was cut); the next poll plans from there."""
        self.scheduler.cancel_from(float("-inf"))
        self.scheduler.cut()
        self.planned_until = self.turns.start = self.turns.until = None

    def panic(self) -> None:
        """Silence everything and forget the plan (keys still held are kept)."""
        self.scheduler.panic()
        self.planned_until = self.turns.start = self.turns.until = None

    # -- control (OSC) ----------------------------------------------------------------
    def reconfigure(self, preset: Preset | None = None, model: MelodyModel | None = None,
                    mode: str | None = None) -> None:
        """Play on with a new preset, model or mode: a preset of the same meter and style from the next planned
        note; anything else starts the model afresh from the next grid step, over the chord sounding (in the
        same meter, after the melody played). Raises MeterError (a meter it cannot play) before any change."""
        new = preset or self.preset
        fresh = model is not None or new.meter != self.preset.meter or new.style != self.preset.style
        if fresh:  # started first: a model that refuses the meter leaves the session as it was
            start = math.ceil(self.clock.beat_at(self._now()) * new.grid) / new.grid
            chords = [ChordAt(start, self.chord)] if self.chord is not None else []
            # in the same bars, the new model goes on from the melody played (MelodyModel.played_before)
            before, notes = self.model.played_before(start) if new.meter == self.preset.meter else ([], [])
            for m in (model or self.model, self._spare):
                m.start(Context(new, seed=self.seed, start_beat=start, chords=before + chords, notes=notes))
            self.scheduler.cancel_from(start)
            self.planned_until = None
        if preset is not None:
            self.preset, self.capture.window_s = preset, preset.strike_window_ms / 1000.0
            if not fresh:
                self.model.preset = self._spare.preset = preset
        if mode is not None:
            self.mode, self.turns = mode, Turns(self.turns.end_call_cc)
        if model is not None:
            self._use(model)

    def _use(self, model: MelodyModel) -> None:
        self.model = model
        model.on_onset = None if self.early is None else lambda start, pitch, velocity: self.early.start(
            start, pitch, velocity, self._plan_beat, self.channel)

    def locate(self, kind: str, t: float, beat: float = 0.0) -> None:
        """Transport of the internal clock at ``t`` (s): "start" runs from beat 0, "continue" from where
        it stopped, "position" from ``beat``, "stop" silences. Raises ValueError with a MIDI clock."""
        if not isinstance(self.clock, InternalClock):
            raise ValueError("the clock follows MIDI clock: use the DAW's transport")
        if kind == "stop":
            self.panic()
            self.clock.stop(t)
            return
        at = {"start": 0.0, "continue": self.clock.beat_at(t), "position": beat}[kind]
        self._restart()
        self.clock.start(t, at)
        self.last_activity = t  # a started clock is not an idle one

    # -- chords ---------------------------------------------------------------------
    def _on_chord(self, change: ChordChange) -> None:
        self.chord = change.chord
        if change.rebass:  # a strum's later strings moved only its bass: its answer stands
            return
        self.stats["chord_changes"] += 1
        if isinstance(self.clock, InternalClock) and not self.clock.running:
            self.clock.start(change.t, 0.0)  # the first chord is beat 0, a beat the player strikes on
            self._strike_phases.append(0.0)
            self.clock.follow(change.t, 0.0)
        if not self.clock.running:
            return  # MIDI clock stopped: remembered, played once it runs
        beat = snap_to_beat(self.clock.beat_at(change.t), self.preset.strike_tolerance_beats)
        if self.mode == "call-response":
            self.turns.heard(beat, self.preset, change.chord)
            self.model.extend([ChordAt(beat, change.chord)])  # the answer hears the call's tune over its chords
            return
        self._replan(beat, [ChordAt(beat, change.chord)])

    def _replan(self, beat: float, chords: list[ChordAt], until: float | None = None, finish=None) -> None:
        """Roll back from ``beat``, set ``chords``, plan again (to ``until``; ``finish``: an answer's ending)."""
        self.stats["replans"] += 1
        self._resync = False
        self.model.rollback(beat)
        self.scheduler.cancel_from(beat)
        tones = chords[0].chord.tones if chords[0].chord else frozenset()
        # a note of the old plan on this beat, or one that clashes with the new chord, ends now
        self.scheduler.cut(keep=lambda n: n.start < beat - 1e-6 and n.pitch % 12 in tones)
        self.model.extend(chords)
        self.chord_beat = chords[-1].beat
        self.planned_until = beat
        now_beat = self.clock.beat_at(self._now())
        self._plan(until if until is not None else max(beat, now_beat) + self.lookahead, finish=finish)

    def _plan(self, until: float, yielding: bool = False, finish=None) -> None:
        """Generate up to ``until`` (beats) within a sixteenth note's time, and schedule.
        ``yielding``: plan one model step at a time and stop early once events wait, so
        that planning ahead never delays a key (the next poll plans on)."""
        budget = min(0.05, 15.0 / max(self.clock.tempo, 1.0))
        now_beat = self._plan_beat = self.clock.beat_at(self._now())
        if self.early:  # a note told on its pitch but never finished (a fault) keeps its placeholder end
            self.early.forget()
        deadline = time.monotonic() + budget  # compute time: measured on the real monotonic clock
        while self.model.cursor < until - 1e-9:
            step = min(until, self.model.cursor + 1e-6) if yielding else until
            for note in (finish or iter)(self.model.generate(step, deadline_s=deadline)):
                self._schedule(note, now_beat)
            if not yielding or self.input_waiting() or time.monotonic() > deadline:
                break
        if self.model.cursor < until - 1e-9 and not (yielding and self.input_waiting()):
            self.stats["deadline_misses"] += 1
        self.stats["fallbacks"] = getattr(self.model, "fallbacks", 0)  # missed deadlines the rules model took
        self.planned_until = self.model.cursor

    def _schedule(self, note: MelodyNote, now_beat: float) -> None:
        if self.early and self.early.finish(note.start, note.pitch, note.end):
            return  # sounding since its pitch was chosen (daemon/onset.py)
        start, wait = note.start, None
        if start < now_beat:  # a reaction to a chord already struck: play it now
            if note.end - now_beat < 0.1:
                return
            start = now_beat
        elif self._deferred and self._deferred[0] <= start <= self._deferred[1]:
            start = self._deferred[2]  # a strike is open there: wait for it
        elif abs(start - round(start)) < 1e-6 and start > self.chord_beat + 1e-6 \
                and round(start % self.preset.beats_per_bar, 3) in self._strike_phases:
            # a chord may be struck on this beat: the note waits, and up to hold_ms for keys still unread
            start, wait = (min(start + self._beats(s), note.end - 1e-3) for s in (self.hold_s(), self.max_hold_s))
        self.scheduler.end_by(start, self.channel)  # one voice: this onset releases the note before
        self.scheduler.add(Note(start, note.end, note.pitch, note.velocity, self.channel), wait_for_keys=wait)
        if start <= now_beat:  # a reaction: the sending thread takes the GIL and sends it now
            self.scheduler.hand_over(wait=self.send_first)

    # -- time passing -----------------------------------------------------------------
    def poll(self, now: float | None = None) -> None:
        """Close a gathered strike when its time is over, keep the plan ahead of the
        clock, answer in call-response mode. Never raises (see handle)."""
        now = self._now() if now is None else now
        try:
            self._take(self.capture.poll(now))
            self._poll(now)
        except Exception as exc:
            self._fault(exc)

    def _poll(self, now: float) -> None:
        if not self.clock.running or self.chord is None:
            return
        beat = self.clock.beat_at(now)
        held = bool(self.capture.sounding)
        if self.mode == "call-response":
            self._maybe_answer(now, beat, self._beats(now - self.last_activity), held)
            return
        rest_at = math.inf if held else rest_beat(self.clock.beat_at(self.last_activity), IDLE_BARS, self.preset)
        if beat >= rest_at - 1e-9:
            if isinstance(self.clock, InternalClock):
                self._restart()  # a note still sounding ends now: the stopped clock would never reach its end
                self.clock.stop(now)  # the next chord starts a new phrase on beat 0
                self.capture.forget_chord()
                self.chord = None
            return
        if self.planned_until is None or self.planned_until < beat:
            start = math.ceil(beat * self.preset.grid) / self.preset.grid
            self._replan(start, [ChordAt(start, self.chord)])
        elif self._resync and self.planned_until < beat + self.lookahead:
            self._resync = False  # after the rules model's step, the model plans again from there
            self._replan(self.planned_until, [ChordAt(self.planned_until, self.chord)])
        elif self.planned_until < min(beat + self.lookahead, rest_at - 1e-9):
            last_bar = rest_at - self.preset.beats_per_bar
            if self.planned_until < last_bar - 1e-9:
                self._plan(min(beat + self.lookahead + 1.0, last_bar), yielding=True)
            elif not self.input_waiting():  # the last bar, planned whole (one model call) so that its end can land
                plan, begun = [ChordAt(self.chord_beat, self.chord)], self.planned_until
                self._plan(rest_at, finish=lambda notes: ended(notes, plan, rest_at, self.preset, begun))
        elif not self.input_waiting():  # idle: refill the model's cache now, in one go
            while self.model.prepare() and not (self.input_waiting() or self.capture.open_strike):
                pass
            if now - self._warmed >= self.warm_s > 0 and not self.input_waiting():
                self.model.warm()
                self._warmed = now

    def _maybe_answer(self, now: float, beat: float, silent_beats: float, held: bool) -> None:
        due = self.turns.due(beat, silent_beats, held, self.preset, self._beats(ANSWER_LEAD_S))
        if due is None:
            return
        start, end, plan = answer_plan(chords := self.turns.call.chords, self.chord, *due, self.preset)
        self.model.answer(chords[0][0] if chords else None, start, end)  # it may echo the call
        self.turns.answering(start, end)
        self._replan(start, plan, until=end, finish=lambda notes: ended(notes, plan, end, self.preset))
        self.stats["answers"] += 1

    def _interrupt_response(self, t: float) -> None:
        if self.turns.until is not None and self.turns.cut(beat := self.clock.beat_at(t), self.preset):
            self._restart()
            self.model.rollback(beat)
