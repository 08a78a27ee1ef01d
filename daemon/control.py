"""OSC control: the Commands of the OSC bridge applied to a live session, and replies.

Runs on the engine's thread (serve's loop hands it every Command but panic). Chords
sent by pitch or name are struck as keys held until the next chord, so they go through
the same capture as played ones. ``/riffd/generate`` renders a phrase in the phrase
worker's process (daemon/phrases.py) with a model of its own, so the live melody never
waits for it, not even for the GIL. A command riffd cannot follow (a bad preset name, a parameter out of
range, a tempo under MIDI clock) is answered with ``/riffd/error`` and changes nothing.
"""
from __future__ import annotations

import itertools
import logging
import math
import threading
from typing import Callable

from riffd.bridges import events as ev
from riffd.bridges.osc import OscBridge
from riffd.bridges.osctable import MAX_BARS, MAX_PRIMER, OSC_CHANNEL
from riffd.models.protocol import MelodyModel, MelodyNote
from riffd.music.chords import parse_chord, recognize
from riffd.music.theory import MF, felt_beat
from riffd.presets import load_preset

from .clock import InternalClock
from .logs import reason
from .phrases import MAX_PHRASE_CHORDS, NO_CHORD, PhraseJob, PhraseWorker, played, progression

log = logging.getLogger("riffd.daemon")


class Control:
    """Applies OSC Commands to ``engine``; ``clock_name`` is "internal", "midi" or
    "link"; ``load(name)`` loads a model (raises ValueError or OSError on a bad name) on a
    thread of its own, which puts a "model/loaded" Command on ``events`` (the engine's
    queue) when done; ``notes_sent()`` counts melody notes started; ``propose_tempo``
    takes /riffd/tempo instead of the internal clock (Link). ``follows_preset``: no model
    was chosen, so /riffd/preset brings the preset's model too (until /riffd/model).
    ``kept``: the session's meter and call bars where it set them (serve's --meter and
    --call-bars, later /riffd/meter and /riffd/param/call_bars), which a /riffd/preset
    keeps: a song's bars and a trading scheme are the player's, not a preset's."""

    def __init__(self, engine, osc: OscBridge, events, clock_name: str, load: Callable[[str], MelodyModel],
                 notes_sent: Callable[[], int], propose_tempo: Callable[[float], None] | None = None,
                 follows_preset: bool = False, kept: dict | None = None):
        self.engine, self.osc, self.events, self.clock_name, self.load = engine, osc, events, clock_name, load
        self.notes_sent, self.propose_tempo, self.follows_preset = notes_sent, propose_tempo, follows_preset
        self.kept = dict(kept or {})
        self.model_name = engine.model.name
        self.held: list[int] = []                     # keys of the last OSC chord
        self.sent_chords: list[tuple[float, object]] = []  # (t, Chord) since the last generate
        self.primer: list[MelodyNote] = []  # /riffd/primer's notes since the last generate
        self.phrases = PhraseWorker(osc, load, warm=self.model_name)
        self._ids = itertools.count(1)

    def handle(self, command: ev.Command) -> None:
        """Apply one command; a refusal is answered with /riffd/error."""
        try:
            self._apply(command)
        except Exception as exc:  # a bad name or value, or a model that fails to load: answer, play on
            if not isinstance(exc, (ValueError, OSError)):
                log.error("OSC /riffd/%s failed (%s: %s)", command.name, type(exc).__name__, reason(exc))
            self.osc.send("/riffd/error", [f"/riffd/{command.name}", reason(exc)], command.source)

    def _apply(self, c: ev.Command) -> None:
        e, name = self.engine, c.name
        if name == "chord/name" and NO_CHORD.match(c.args[0]):
            self.strike([], c.t)  # N.C.: the chord's keys are let go
        elif name in ("chord", "chord/name"):
            chord = parse_chord(c.args[0]) if name == "chord/name" else recognize(c.args)
            self.strike(chord.voicing() if name == "chord/name" else list(c.args), c.t)
            if chord is not None and len(self.sent_chords) < MAX_PHRASE_CHORDS:
                self.sent_chords.append((c.t, chord))
        elif name in ("play", "stop", "continue", "position"):
            e.locate({"play": "start"}.get(name, name), c.t, *(c.args or ()))
        elif name == "tempo":
            self.tempo(c.args[0], c.t)
        elif name == "preset":
            e.reconfigure(preset=load_preset(c.args[0]).with_values(**self.kept))
            if self.follows_preset and e.preset.model != self.model_name:  # as serve --preset would play it
                self._start_load(ev.Command(c.t, "model", (e.preset.model,), c.source), for_preset=True)
        elif name == "model":
            self.follows_preset = False
            self._start_load(c)
        elif name == "model/loaded":
            if c.args[2] and not (self.follows_preset and c.args[0] == e.preset.model):
                return  # a preset's model that a later preset or /riffd/model has replaced
            e.reconfigure(model=c.args[1])
            self.model_name = c.args[0]
        elif name == "mode":
            if c.args[0] not in ("accompany", "call-response"):
                raise ValueError(f"unknown mode {c.args[0]!r}: accompany or call-response")
            e.reconfigure(mode=c.args[0])
        elif name == "call/end":
            e.turns.end()
        elif name == "meter":
            if self.clock_name == "link":  # a new quantum would move the session's beat under the plan
                raise ValueError("the Link session's bar is set at start: serve --meter")
            e.reconfigure(preset=e.preset.with_values(meter=list(c.args)))
            self.kept["meter"] = list(c.args)
        elif name.startswith("param/"):
            key, value = name.split("/", 1)[1], c.args[0]
            if key in ("register_low", "register_high"):
                low, high = e.preset.register
                key, value = "register", [round(value), high] if key == "register_low" else [low, round(value)]
            e.reconfigure(preset=e.preset.with_values(**{key: value}))
            if key == "call_bars":
                self.kept[key] = value
        elif name == "primer":
            if len(self.primer) >= MAX_PRIMER:
                raise ValueError(f"a primer holds {MAX_PRIMER} notes at most: /riffd/generate uses and clears it")
            pitch, velocity, start, duration = c.args
            self.primer.append(MelodyNote(start, duration, pitch, velocity))
        elif name == "generate":
            self.generate(c)
        elif name == "status":
            self.osc.send("/riffd/status/reply", self.status(), c.source)
        elif name == "panic":
            e.panic()
        else:
            raise ValueError(f"no such command {name!r}")

    def _start_load(self, c: ev.Command, for_preset: bool = False) -> None:
        """Loading takes a while: on a thread, then back through the queue (``for_preset``:
        the model a preset brought, dropped if the choice has moved on by then)."""
        threading.Thread(target=self._load, args=(c, for_preset), name="riffd-model-load", daemon=True).start()

    def _load(self, c: ev.Command, for_preset: bool = False) -> None:
        try:
            model = self.load(c.args[0])
            model.rehearse(self.engine.preset)  # here, not on the engine's thread
        except Exception as exc:
            self.osc.send("/riffd/error", ["/riffd/model", reason(exc)], c.source)
            return
        self.events.put(ev.Command(c.t, "model/loaded", (c.args[0], model, for_preset), c.source))

    def tempo(self, bpm: float, t: float) -> None:
        """The internal clock's tempo, or a proposal to the Link session; a MIDI clock
        refuses (ValueError)."""
        if self.propose_tempo is not None:
            self.propose_tempo(bpm)
        elif isinstance(self.engine.clock, InternalClock):
            self.engine.clock.set_tempo(bpm, t)
        else:
            raise ValueError("the clock follows MIDI clock: set the tempo in the DAW")

    def strike(self, pitches: list[int], t: float) -> None:
        """Release the last OSC chord's keys and strike ``pitches`` at ``t``."""
        for p in self.held:
            self.engine.handle(ev.NoteOff(t, OSC_CHANNEL, p))
        for p in pitches:
            self.engine.handle(ev.NoteOn(t, OSC_CHANNEL, p, MF))  # no velocity sent: mf, the melody at its preset's
        self.engine.close_strike()  # a chord sent whole: no key is still on its way
        self.held = list(pitches)

    def generate(self, c: ev.Command) -> None:
        """A phrase of ``bars`` bars, after the primer's bars where one was sent: the
        chords (named, or sent since the last generate) fill both, from the primer's first
        bar. Raises ValueError with no chords, or past MAX_BARS bars in all."""
        bars, names = c.args[0], list(c.args[1:])
        preset, primer, self.primer = self.engine.preset, self.primer, []  # used once, refused or not
        lead = math.ceil(max((n.end for n in primer), default=0.0) / preset.beats_per_bar - 1e-9)
        if lead + bars > MAX_BARS:
            raise ValueError(f"the primer's {lead} bars and the phrase's {bars} make more than {MAX_BARS}")
        if names:
            chords = progression(names, lead + bars, preset.beats_per_bar, felt_beat(preset.meter))
        elif self.sent_chords:
            chords = played(self.sent_chords, self.engine.clock.tempo, lead + bars, preset.beats_per_bar)
        else:
            raise ValueError("no chords: send /riffd/chord first, or give chord names")
        self.sent_chords = []
        preset = preset.with_values(velocity=self.engine.loud(preset.velocity))  # as the live melody is
        job = PhraseJob(next(self._ids), preset, self.model_name, chords, bars, self.engine.seed, c.source,
                        primer, lead)
        self.phrases.jobs.put(job)

    def status(self) -> list:
        e = self.engine
        return [self.model_name, e.preset.name, round(float(e.clock.tempo), 3), self.clock_name,
                int(self.notes_sent()), int(e.stats.get("deadline_misses", 0))]

    def close(self) -> None:
        self.phrases.close()
