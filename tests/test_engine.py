"""The engine in one room: a real clock and scheduler, time driven by hand."""
from riffd.bridges.events import ClockTick, NoteOff, NoteOn, Transport
from riffd.music.chords import parse_chord
from riffd.daemon.clock import PPQN, InternalClock, MidiClock
from riffd.daemon.engine import Engine
from riffd.presets import load_preset
from riffd.daemon.scheduler import Scheduler
from riffd.models import load_model


class Rig:
    def __init__(self, preset="pop", mode=None, clock=None):
        self.t = 100.0
        self.sent = []
        # one beat per second; strong-beat notes always chord tones, so answers are checkable
        self.preset = load_preset(preset).with_values(tempo=60.0, chord_tone_bias=1.0)
        self.clock = clock or InternalClock(60.0)
        self.scheduler = Scheduler(self.clock, self.sent.append, now=lambda: self.t)
        self.engine = Engine(load_model("rules"), self.preset, self.clock, self.scheduler,
                             mode=mode, seed=4, now=lambda: self.t)

    def advance(self, to):
        while self.t < to:
            self.t = min(to, self.t + 0.01)
            self.engine.poll(self.t)
            self.scheduler.run_due(self.t)

    def strike(self, name, release=None):
        for p in release or []:
            self.engine.handle(NoteOff(self.t, 0, p))
        pitches = parse_chord(name).voicing()
        for p in pitches:
            self.engine.handle(NoteOn(self.t, 0, p, 90))
        return pitches

    def ons(self):
        return [m for m in self.sent if m[0] & 0xF0 == 0x90]


def test_accompany_answers_each_chord_on_its_beat():
    rig = Rig()
    held = rig.strike("C")
    rig.advance(100.01)
    first = rig.ons()
    assert first and first[0][1] % 12 in parse_chord("C").tones  # reaction at once
    rig.advance(103.9)
    held = rig.strike("Ab", held)     # struck 0.1 beat early: counts on beat 4
    rig.advance(104.05)
    on_beat = rig.ons()[-1]
    assert on_beat[1] % 12 in parse_chord("Ab").tones
    assert rig.engine.chord_beat == 4.0
    # no note of the old plan sounds past the change unless it fits the new chord
    for note in rig.scheduler.sounding():
        assert note.start >= 4.0 or note.pitch % 12 in parse_chord("Ab").tones
    assert rig.engine.stats["chord_changes"] == 2


def test_silence_rests_and_restarts_on_beat_zero():
    rig = Rig()
    held = rig.strike("F")
    rig.advance(102.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(115.0)                  # two bars of silence and more
    assert not rig.clock.running and not rig.scheduler.sounding()
    count = len(rig.ons())
    rig.strike("G")
    rig.advance(115.5)
    assert len(rig.ons()) > count and rig.clock.beat_at(115.0) == 0.0


def test_call_response_answers_after_the_player_stops():
    rig = Rig(preset="blues", mode="call-response")
    held = rig.strike("C7")
    rig.advance(102.0)
    held = rig.strike("F7", held)
    rig.advance(104.0)
    assert rig.ons() == []              # riffd listens while the player plays
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    wait = rig.preset.response_wait_beats
    rig.advance(104.0 + wait + 1.1)
    assert rig.engine.stats["answers"] == 1
    length = rig.preset.phrase_bars * rig.preset.beats_per_bar
    start = rig.engine.responding_until - length
    # the answer replays the call's progression: C7 for two beats, then F7
    assert rig.engine.model.chord_at(start) == parse_chord("C7")
    assert rig.engine.model.chord_at(start + 2) == parse_chord("F7")
    rig.advance(104.0 + wait + 1.1 + length + 1)
    ons = rig.ons()
    assert len(ons) >= 4
    assert not rig.scheduler.sounding() and rig.scheduler.pending() == 0


def test_player_interrupts_an_answer():
    rig = Rig(preset="blues", mode="call-response")
    held = rig.strike("Am")
    rig.advance(101.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(104.5)
    assert rig.engine.stats["answers"] == 1 and rig.scheduler.pending()
    rig.strike("Dm")
    assert rig.scheduler.pending() == 0 and not rig.scheduler.sounding()


def test_midi_stop_sends_panic():
    clock = MidiClock()
    rig = Rig(clock=clock)
    rig.engine.handle(Transport(rig.t, "start"))
    rig.strike("C")
    for i in range(3 * PPQN):
        rig.t = 100.0 + i / PPQN
        rig.engine.handle(ClockTick(rig.t))
        rig.engine.poll(rig.t)
        rig.scheduler.run_due(rig.t)
    assert rig.ons()
    rig.engine.handle(Transport(rig.t, "stop"))
    assert not rig.scheduler.sounding() and rig.scheduler.pending() == 0
    assert [0xB1, 123, 0] in rig.sent


class Faulty:
    """A model that raises on chosen generate calls (a unit-test fake of one room)."""

    def __init__(self, fail_on):
        from riffd.models.rules import RulesModel
        self.inner, self.calls, self.fail_on = RulesModel(), 0, set(fail_on)
        self.name = "faulty"

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, until_beat, deadline_s=None):
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError("model blew up\nsecond line")
        return self.inner.generate(until_beat, deadline_s)


def test_a_model_fault_is_one_log_line_and_rules_plays_on(caplog):
    rig = Rig()
    model = Faulty(fail_on={1, 2})
    rig.engine = Engine(model, rig.preset, rig.clock, rig.scheduler, seed=4, now=lambda: rig.t)
    with caplog.at_level("ERROR", logger="riffd.daemon"):
        rig.strike("G")
        rig.advance(104.0)
    assert rig.engine.stats["faults"] >= 1
    lines = [r.getMessage() for r in caplog.records]
    assert lines and all("\n" not in line for line in lines)
    assert "model blew up" in lines[0]
    ons = rig.ons()
    assert len(ons) >= 3                          # rules played through the fault
    assert model.calls > 2                        # and the model took over again after it
    rig.scheduler.panic()
    assert not rig.scheduler.sounding()


def test_drum_channel_and_chosen_channels_are_not_chords():
    rig = Rig()
    for p in parse_chord("C").voicing():
        rig.engine.handle(NoteOn(rig.t, 9, p, 90))    # channel 10: drums
    rig.advance(100.5)
    assert rig.engine.chord is None and not rig.ons()
    rig.engine.in_channels = frozenset({3})
    rig.strike("C")                                    # channel 1: not chosen
    rig.advance(101.0)
    assert rig.engine.chord is None
    for p in parse_chord("C").voicing():
        rig.engine.handle(NoteOn(rig.t, 3, p, 90))
    rig.advance(101.5)
    assert rig.engine.chord.name == "C" and rig.ons()
