"""The engine in one room: a real clock and scheduler, time driven by hand."""
import math

import pytest

from riffd.bridges.events import ClockTick, Control, NoteOff, NoteOn, Transport
from riffd.music.chords import parse_chord
from riffd.daemon.clock import PPQN, InternalClock, MidiClock
from riffd.daemon.engine import HOLD_MARGIN_MS, HOLD_MS, Engine
from riffd.models.protocol import MelodyModel, MelodyNote
from riffd.presets import load_preset
from riffd.daemon.scheduler import Scheduler
from riffd.models import load_model


class Rig:
    def __init__(self, preset="pop", mode=None, clock=None, model=None, step=0.01, input_waiting=None,
                 send_first=False, keys_waiting=lambda: False, end_call_cc=None):
        self.t, self.step = 100.0, step
        self.sent, self.started, self.stopped = [], [], []
        # one beat per second; strong-beat notes always chord tones, so answers are checkable
        self.preset = load_preset(preset).with_values(tempo=60.0, chord_tone_bias=1.0)
        self.clock = clock or InternalClock(60.0)
        self.scheduler = Scheduler(self.clock, self.sent.append, now=lambda: self.t, on_note=self._started,
                                   keys_waiting=keys_waiting)
        self.engine = Engine(model or load_model("rules"), self.preset, self.clock, self.scheduler,
                             mode=mode, seed=4, now=lambda: self.t,
                             input_waiting=input_waiting or (lambda: False), send_first=send_first,
                             end_call_cc=end_call_cc)

    def _started(self, kind, note, t):
        (self.started if kind == "on" else self.stopped).append((t, note))

    def advance(self, to):
        while self.t < to - 1e-9:
            self.t = min(to, self.t + self.step)
            self.engine.poll(self.t)
            self.scheduler.run_due(self.t)

    def strike(self, name, release=None, velocity=80):  # mf: the melody at its preset's velocity
        for p in release or []:
            self.engine.handle(NoteOff(self.t, 0, p))
        pitches = parse_chord(name).voicing()
        for p in pitches:
            self.engine.handle(NoteOn(self.t, 0, p, velocity))
        return pitches

    def play(self, names, let_go, beats=4.0):
        """Strike ``names``, one each ``beats`` from now, and let every key go at ``let_go`` (s)."""
        held, start = [], self.t
        for i, name in enumerate(names):
            self.advance(start + i * beats)
            held = self.strike(name, held)
        self.advance(let_go)
        for p in held:
            self.engine.handle(NoteOff(self.t, 0, p))

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


def test_send_first_sends_the_answer_before_the_engine_plans_on():
    for send_first in (False, True):
        rig = Rig(send_first=send_first)
        rig.strike("C")
        rig.engine.poll(rig.t + 0.05)  # the strike closes: the change is planned, nothing sent by hand
        answered = [m for m in rig.ons() if m[1] % 12 in parse_chord("C").tones]
        assert bool(answered) == send_first, send_first
        assert rig.scheduler.pending() > 0  # the look-ahead is planned either way, and not sent


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


@pytest.mark.parametrize("preset, model", [("pop", "onnx"), ("folksong", "riff-folksong"), ("chorale", "riff-chorale")])
def test_let_go_the_melody_ends_on_a_bar_line_as_its_preset_says(preset, model):
    """Keys let go on beat 7.5: two bars on is 15.5, mid-beat, where the accompaniment
    stopped mid-note. It rests on the bar line nearest (16), its last note ending there:
    landed on the chord's root (pop and folksong, ending root), or as the model played
    (chorale, ending model), never cut."""
    rig = Rig(preset=preset, model=load_model(model))
    rig.play(["C", "F"], let_go=107.5)
    rig.advance(118.0)
    assert not rig.clock.running and not rig.scheduler.sounding()
    last = max((note for _, note in rig.started), key=lambda n: n.start)
    assert last.start < 16.0 <= last.start + 4.0 and last.end == pytest.approx(16.0)
    assert max(t for t, _ in rig.stopped) == pytest.approx(116.0, abs=0.02)  # its note-off: on the bar line
    if rig.preset.ending == "root":
        assert last.pitch % 12 == parse_chord("F").root and last.end - last.start >= 1.0 - 1e-6


def test_all_notes_off_instead_of_note_offs_lets_the_accompaniment_rest():
    """Keys released by CC123 (a DAW's stop) and never by note-offs: two bars on, the
    accompaniment rests as after note-offs, and the next chord starts on beat 0."""
    rig = Rig()
    rig.strike("F")
    rig.advance(102.0)
    rig.engine.handle(Control(rig.t, 0, 123, 0))
    rig.advance(115.0)
    assert not rig.clock.running and not rig.scheduler.sounding()
    rig.strike("G")
    rig.advance(115.5)
    assert rig.engine.chord.name == "G" and rig.clock.beat_at(115.0) == 0.0


@pytest.mark.parametrize("let_go", ["pedal", "cc123"])
def test_a_pedal_lifted_or_all_notes_off_is_when_the_player_let_go(let_go):
    """Keys held by the pedal (or never released, then All Notes Off) stop sounding on
    beat 10: the accompaniment plays on to the bar line nearest two bars after that, as
    after note-offs then. It counted from the last key, on beat 0 or 1, and stopped at once."""
    rig = Rig()
    if let_go == "pedal":
        rig.engine.handle(Control(rig.t, 0, 64, 127))
    held = rig.strike("F")
    rig.advance(101.0)
    if let_go == "pedal":
        for p in held:
            rig.engine.handle(NoteOff(rig.t, 0, p))  # the pedal holds them
    rig.advance(110.0)
    rig.engine.handle(Control(rig.t, 0, 64 if let_go == "pedal" else 123, 0))
    count = len(rig.ons())
    rig.advance(114.0)
    assert rig.clock.running and len(rig.ons()) > count  # still playing two beats on
    rig.advance(122.0)
    assert not rig.clock.running and not rig.scheduler.sounding()
    assert max(t for t, _ in rig.stopped) == pytest.approx(120.0, abs=0.02)  # 18, half a bar: the next bar line


def test_all_sound_off_silences_at_once_until_the_next_chord():
    rig = Rig()
    rig.strike("F")
    rig.advance(102.0)
    assert rig.ons()
    rig.engine.handle(Control(rig.t, 0, 120, 0))  # the player's panic, keys still down
    assert not rig.scheduler.sounding() and rig.scheduler.pending() == 0
    assert [0xB0 | rig.engine.channel, 123, 0] in rig.sent
    count = len(rig.ons())
    rig.advance(106.0)
    assert len(rig.ons()) == count and not rig.clock.running  # nothing more: it waits
    rig.strike("F")  # the same chord again is a new phrase, on beat 0
    rig.advance(106.5)
    assert len(rig.ons()) > count and rig.clock.beat_at(106.0) == 0.0


def test_all_sound_off_on_a_channel_that_does_not_count_is_ignored():
    rig = Rig()
    rig.strike("F")
    rig.advance(102.0)
    rig.engine.handle(Control(rig.t, 9, 120, 0))  # the drums' channel
    count = len(rig.ons())
    rig.advance(104.0)
    assert len(rig.ons()) > count


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
    start = rig.engine.turns.until - length
    # the answer replays the call's progression: C7 for two beats, then F7
    assert rig.engine.model.chord_at(start) == parse_chord("C7")
    assert rig.engine.model.chord_at(start + 2) == parse_chord("F7")
    rig.advance(104.0 + wait + 1.1 + length + 1)
    ons = rig.ons()
    assert len(ons) >= 4
    assert not rig.scheduler.sounding() and rig.scheduler.pending() == 0


@pytest.mark.parametrize("model", ["rules", "onnx"])
def test_an_answer_keeps_the_calls_bars_and_lands_on_its_last_chord(model):
    """A two-bar call, C7 then F7 on the bar lines, let go on beat 8: the answer starts on a
    bar line (the silence is heard on beat 10; beat 11 put C7 on the bar's fourth beat),
    changes to F7 a bar later, and ends on F held to its last beat (the blues preset's
    ending, root, as a /riffd/generate phrase ends)."""
    rig = Rig(preset="blues", mode="call-response", model=load_model(model))
    rig.play(["C7", "F7"], let_go=108.0)
    rig.advance(108.0 + rig.preset.response_wait_beats + 0.1)
    end = rig.engine.turns.until
    start = end - rig.preset.phrase_bars * rig.preset.beats_per_bar
    assert start % rig.preset.beats_per_bar == 0 and start >= 10.0
    assert rig.engine.model.chord_at(start) == parse_chord("C7")
    assert rig.engine.model.chord_at(start + 4) == parse_chord("F7")
    rig.advance(100.0 + end + 1)
    last = max((note for _, note in rig.started), key=lambda n: n.start)
    assert last.pitch % 12 == parse_chord("F7").root and last.end == pytest.approx(end)
    assert end - last.start >= 1.0 - 1e-6  # ending_beats: a beat at least
    assert not rig.scheduler.sounding() and rig.scheduler.pending() == 0


def test_an_answer_hears_the_call():
    """Call-response on the transformer: the tune the player plays over a held chord (lone
    keys over it) is in the model's token stream before its answer, twice over: the first
    answer, where the stream begins, and the next, after a rollback past the model's
    cursor (before, the stream held the chords alone and the answer knew only the call's
    last pitch), each call over its chord (before, the call's tune came without it: its
    chord reached the stream at the answer's start)."""
    rig = Rig(preset="folk", mode="call-response", model=load_model("onnx"))
    model = rig.engine.model
    for call, name in enumerate(["C", "F"]):
        begin = math.ceil(rig.t / 4.0) * 4.0 + 4.0  # a bar line past the answer
        rig.advance(begin)
        held = rig.strike(name)
        tune = []  # (beat, pitch) of the call's keys, by the engine's clock
        for k in range(1, 16):
            rig.advance(begin + k / 2)
            tune.append((rig.clock.beat_at(rig.t), 72 + (0, 2, 4, 5, 7, 5, 4, 2)[k % 8]))
            rig.engine.handle(NoteOn(rig.t, 0, tune[-1][1], 90))
            rig.advance(begin + k / 2 + 0.3)
            rig.engine.handle(NoteOff(rig.t, 0, tune[-1][1]))
        rig.advance(begin + 8.0)
        for p in held:
            rig.engine.handle(NoteOff(rig.t, 0, p))
        rig.advance(rig.t + rig.preset.response_wait_beats + 0.1)
        assert rig.engine.stats["answers"] == call + 1
        stream = {(round(b * 12), int(model.groups.pitch_of[i])) for b, i in zip(model.times, model.ids)
                  if model.groups.pitch_of[i] >= 0}
        assert {(round(b * 12), p) for b, p in tune} <= stream, call
        struck = rig.clock.beat_at(begin)
        assert any(struck - 0.5 <= b <= tune[0][0] and model.vocab.tokens[i] == f"Chord_{name}:maj"
                   for b, i in zip(model.times, model.ids)), call
        rig.advance(100.0 + rig.engine.turns.until + 0.5)


def test_an_answer_hears_how_long_the_calls_keys_were_held():
    """The call's keys are heard as long as the player held them (note-on to note-off), a
    pedalled one to the next key: a long note and a short one in the call are a long and a
    short Duration in the stream (before, every key was heard as an eighth note)."""
    rig = Rig(preset="folk", mode="call-response", model=load_model("onnx"))
    model = rig.engine.model
    held = rig.strike("C")
    lengths = {}  # pitch -> (beat struck, beats held); 0: the pedal holds it
    for k, (pitch, length) in enumerate([(72, 1.75), (74, 0.25), (76, 1.5), (77, 0.0), (79, 0.25)]):
        rig.advance(101.0 + 2 * k)
        if length == 0.0:
            rig.engine.handle(Control(rig.t, 0, 64, 127))
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        lengths[pitch] = (rig.clock.beat_at(rig.t), length or 2.0)
        rig.advance(rig.t + (length or 0.5))
        rig.engine.handle(NoteOff(rig.t, 0, pitch))
        if length == 0.0:
            rig.advance(rig.t + 0.5)
            rig.engine.handle(Control(rig.t, 0, 64, 0))
    rig.advance(109.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(rig.t + rig.preset.response_wait_beats + 0.1)
    assert rig.engine.stats["answers"] == 1
    beats_of = dict(zip(model.groups.durations.tolist(), model.groups.duration_beats * 4 / model.den))
    heard = {}  # (twelfths of a beat, pitch) -> the Duration token's beats, the first after the Pitch
    for k, (b, i) in enumerate(zip(model.times, model.ids)):
        if model.groups.pitch_of[i] >= 0:
            length = next(beats_of[d] for d in model.ids[k:] if d in beats_of)
            heard[round(b * 12), int(model.groups.pitch_of[i])] = length
    for pitch, (beat, length) in lengths.items():
        assert abs(heard[round(beat * 12), pitch] - length) <= 0.13, (pitch, heard[round(beat * 12), pitch])


def test_a_key_let_go_within_its_strikes_window_is_heard_short():
    """A staccato key released before the capture's strike window closes (the engine
    learns it is a melody key after its note-off) is heard as a short note, not held on
    to the next key."""
    rig = Rig(preset="folk", mode="call-response")
    held = rig.strike("C")
    rig.advance(101.0)
    rig.engine.handle(NoteOn(rig.t, 0, 76, 90))
    rig.engine.handle(NoteOff(rig.t + 0.005, 0, 76))
    rig.advance(101.5)
    rig.engine.handle(NoteOn(rig.t, 0, 74, 90))
    rig.advance(102.0)
    rig.engine.handle(NoteOff(rig.t, 0, 74))
    rig.advance(102.5)
    first, second = rig.engine.model.player_notes[-2:]
    assert (first.pitch, second.pitch) == (76, 74) and first.duration <= 0.1 and 0.4 <= second.duration <= 0.6
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))


@pytest.mark.parametrize("name", ["rules", "onnx"])
@pytest.mark.parametrize("repeat", [1.0, 0.0])
def test_an_answer_can_take_up_the_call(name, repeat):
    """A 4-bar call over C then G, answered a bar after it ends over the same changes:
    with the preset's ``repeat`` at 1 the answer plays the call's tune on the beats that
    mirror it, the beat after each change and after the call's end its own; at 0 it plays its own
    (before, it never took the call up: the form remembered the model's notes and a given
    melody, not a player's)."""
    rig = Rig(preset="folk", mode="call-response", model=load_model(name))
    rig.engine.reconfigure(preset=rig.preset.with_values(repeat=repeat))
    tune = [(0.5, 76, 1.0), (1.5, 74, 0.5), (2.0, 72, 1.5), (4.0, 79, 0.5), (4.5, 77, 0.5), (5.0, 76, 2.0),
            (8.5, 74, 0.5), (9.0, 71, 0.5), (9.5, 74, 0.5), (10.0, 79, 2.0), (12.5, 77, 0.5), (13.0, 76, 1.0)]
    held = rig.strike("C")
    for start, pitch, length in tune:
        rig.advance(100.0 + start)
        if start == 8.5:
            rig.advance(108.0)
            held = rig.strike("G", held)
            rig.advance(108.5)
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        rig.advance(100.0 + start + length - 0.05)
        rig.engine.handle(NoteOff(rig.t, 0, pitch))
    rig.advance(116.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(119.0)
    assert rig.engine.stats["answers"] == 1 and rig.engine.turns.until == 36.0
    rig.advance(136.0)
    # but the beat after each change (where the call rested at the change, the answer plays a note of its own)
    # and after the call's last note
    mirrored = lambda beat: 1.0 <= beat < 8.0 or 9.0 <= beat < 13.5  # noqa: E731
    answer = [(round(n.start - 20.0, 3), n.pitch) for n in rig.engine.model.generated if mirrored(n.start - 20.0)]
    call = [(start, pitch) for start, pitch, _ in tune if mirrored(start)]
    assert (answer == call) == (repeat == 1.0), str((answer, call))


def test_a_call_of_keys_alone_is_taken_up_from_its_first_bar():
    """A second call of keys alone (no chord struck: the answer plays over the chord
    before) is taken up from the bar line of its first key, a pickup kept a pickup; after
    the call's last note the answer plays its own (before, the silence between the call
    and the answer came back as a rest)."""
    rig = Rig(preset="folk", mode="call-response", model=load_model("rules"))
    rig.engine.reconfigure(preset=rig.preset.with_values(repeat=1.0))
    held = rig.strike("C")
    rig.advance(104.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(107.0)
    rig.advance(100.0 + rig.engine.turns.until + 4.3)  # a bar after the answer, and a pickup
    keys, base = [], rig.t
    for at, pitch, length in [(0.0, 76, 0.9), (1.0, 74, 0.4), (1.5, 72, 1.4), (3.0, 79, 0.9), (4.0, 77, 0.4)]:
        rig.advance(base + at)
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        keys.append((rig.clock.beat_at(rig.t), pitch))
        rig.advance(base + at + length)
        rig.engine.handle(NoteOff(rig.t, 0, pitch))
    rig.advance(rig.t + 3.0)
    assert rig.engine.stats["answers"] == 2
    start = rig.engine.turns.until - rig.preset.phrase_bars * 4.0
    rig.advance(100.0 + rig.engine.turns.until + 1.0)
    shift = start - 4.0 * math.floor(keys[0][0] / 4.0)  # from the first key's bar line to the answer's
    played = {(round(n.start, 2), n.pitch) for n in rig.engine.model.generated if n.start >= start}
    assert {(round(round((b + shift) * 12) / 12, 2), p) for b, p in keys[1:]} <= played, (keys, shift, played)
    # the silence before the answer mirrors to (the call's end, start + shift): not a rest
    after = [n for n in rig.engine.model.generated if keys[-1][0] + shift + 0.3 < n.start < start + shift - 1e-6]
    assert after, "the answer plays on after the call's last note"


def test_a_pop_answer_plays_notes_not_blips():
    """Pop follows its density (density_follow 1): the beats riffd listened to are not
    counted as its own sparse playing. Counted, the transformer's answer came in notes of
    a twelfth of a beat with its last bar silent."""
    rig = Rig(preset="pop", mode="call-response", model=load_model("onnx"))
    rig.play(["C", "Am", "F", "G"], let_go=116.0)
    rig.advance(rig.t + rig.preset.response_wait_beats + 1.1)
    end = rig.engine.turns.until
    rig.advance(100.0 + end + 1)
    lengths = sorted(note.end - note.start for _, note in rig.started)
    assert len(lengths) >= 4 and lengths[len(lengths) // 2] >= 0.25, lengths
    assert max(t - 100.0 for t, _ in rig.started) >= end - rig.preset.beats_per_bar  # the last bar plays


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


@pytest.mark.parametrize("call_bars,start", [(4, 16.0), (0, 20.0)])
def test_trading_a_call_of_call_bars_is_answered_on_its_downbeat(call_bars, start):
    """call_bars 4 (trading fours): a 4-bar call, C then G, its keys let go on the bar
    line, is answered from that downbeat (planned just before it, keys still held), its
    first note sounding there; a rest inside the call does not end it. With call_bars 0
    the same call waits for its silence and is answered a bar on."""
    rig = Rig(preset="folk", mode="call-response")
    rig.engine.reconfigure(preset=rig.preset.with_values(call_bars=call_bars, phrase_bars=4))
    held = rig.strike("C")
    rig.advance(102.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(108.0)  # six beats of rest: silence enough for call_bars 0's answer, inside call_bars 4's call
    assert rig.engine.stats["answers"] == (call_bars == 0)
    if call_bars == 0:
        return
    rig.play(["G"], let_go=116.0)
    assert rig.engine.stats["answers"] == 1 and rig.engine.turns.start == start
    rig.advance(100.0 + start + 0.1)
    t, first = min(rig.started, key=lambda pair: pair[0])
    assert first.start == start and 100.0 + start <= t <= 100.0 + start + HOLD_MS / 1000.0 + 1e-6


def test_a_call_let_go_on_the_bar_line_waits_a_bar_without_call_bars():
    rig = Rig(preset="folk", mode="call-response")
    rig.engine.reconfigure(preset=rig.preset.with_values(phrase_bars=4))
    rig.play(["C", "G"], let_go=116.0, beats=8.0)
    rig.advance(119.0)
    assert rig.engine.stats["answers"] == 1 and rig.engine.turns.start == 20.0


def test_a_key_just_before_a_trading_answer_is_the_calls_tail():
    """A key struck after the answer was planned, in the call's last 50 ms, neither cuts
    the answer (which cut it before) nor begins the next call: one answer, played whole."""
    rig = Rig(preset="folk", mode="call-response")
    rig.engine.reconfigure(preset=rig.preset.with_values(call_bars=2, phrase_bars=2))
    held = rig.strike("C")
    rig.advance(107.97)
    assert rig.engine.stats["answers"] == 1 and rig.engine.turns.start == 8.0
    rig.engine.handle(NoteOn(rig.t, 0, 84, 90))
    rig.advance(108.2)
    rig.engine.handle(NoteOff(rig.t, 0, 84))
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    assert rig.engine.turns.until == 16.0 and rig.engine.turns.call.first is None
    rig.advance(124.0)
    assert rig.engine.stats["answers"] == 1
    assert max(n.start for _, n in rig.started) >= 15.0  # the answer's last bar sounded
    assert not rig.scheduler.sounding() and rig.scheduler.pending() == 0


def test_a_call_that_strikes_the_sounding_chord_again_begins_there():
    """call_bars 2: the second call strikes C again, the chord still sounding from the
    first (a restrike, no change), and plays its first key in its second bar's second
    half; it is answered two bars after its strike (before, it began at that key's
    nearest bar line and was answered a bar late)."""
    rig = Rig(preset="folk", mode="call-response")
    rig.engine.reconfigure(preset=rig.preset.with_values(call_bars=2, phrase_bars=2))
    rig.play(["C"], let_go=108.0)
    rig.advance(120.0)
    assert rig.engine.stats["answers"] == 1 and rig.engine.turns.until is None
    held = rig.strike("C")
    rig.advance(126.5)
    rig.engine.handle(NoteOn(rig.t, 0, 84, 90))
    rig.advance(127.5)
    rig.engine.handle(NoteOff(rig.t, 0, 84))
    rig.advance(128.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    assert rig.engine.stats["answers"] == 2 and rig.engine.turns.start == 28.0


@pytest.mark.parametrize("control", [67, 66])
def test_the_end_call_controller_ends_a_call_with_its_keys_held(control):
    """serve --end-call-cc 67: the switch pressed on beat 6.5 of a call whose chord is still
    held ends it; the answer starts on the next bar line. Another controller does not."""
    rig = Rig(preset="folk", mode="call-response", end_call_cc=67)
    rig.strike("C")
    rig.advance(106.5)
    rig.engine.handle(Control(rig.t, 0, control, 127))
    rig.advance(112.0)
    answered = rig.engine.stats["answers"] == 1
    assert answered == (control == 67)
    if answered:
        assert rig.engine.turns.start == 8.0 and min(n.start for _, n in rig.started) == 8.0


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


def test_a_chord_layered_on_two_channels_plays_on_while_either_channel_holds_it():
    """A DAW's piano (channel 1) lets the chord go on beat 3 while its pad (channel 2)
    holds it to beat 13: the accompaniment plays on (before, the piano's note-offs let
    the keys go, and it rested on beat 12), then rests two bars after the pad lets go."""
    rig = Rig()
    for channel in (0, 1):
        for p in parse_chord("C").voicing():
            rig.engine.handle(NoteOn(rig.t, channel, p, 80))
    rig.advance(103.0)
    for p in parse_chord("C").voicing():
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(112.5)
    count = len(rig.ons())
    rig.advance(113.0)
    assert rig.clock.running and len(rig.ons()) > count
    for p in parse_chord("C").voicing():
        rig.engine.handle(NoteOff(rig.t, 1, p))
    rig.advance(124.0)
    assert not rig.clock.running and not rig.scheduler.sounding()


class EveryBeat(MelodyModel):
    """A unit-test fake: the chord's root as a quarter note on every beat, one sixteenth
    per step."""
    name = "every-beat"

    def _next_notes(self):
        beat = self.cursor
        self.cursor += 0.25
        chord = self.chord_at(beat)
        on_beat = abs(beat - round(beat)) < 1e-9
        return [MelodyNote(beat, 1.0, 60 + chord.root, 80)] if chord and on_beat else []


def note_ons_between(rig, low, high):
    """(time s, pitch) of the note-ons riffd sent from ``low`` to ``high`` seconds."""
    return [(t, n.pitch) for t, n in rig.started if n is not None and low <= t < high]


def strike_every_two_beats(rig, name, until_beat):
    """Strike ``name`` on time on beats 0, 2, ... up to ``until_beat``; returns the keys held."""
    held = rig.strike(name)
    for beat in range(2, until_beat + 1, 2):
        rig.advance(100.0 + beat)
        held = rig.strike(name, held)
    rig.advance(100.0 + until_beat + 0.01)
    return held


def test_a_note_on_a_striking_beat_waits_only_for_the_players_strike():
    rig = Rig(model=EveryBeat(), step=0.001)
    strike_every_two_beats(rig, "C", 4)  # on time, on beats 0 and 2 of the bar: those wait
    assert abs(rig.engine.hold_s() - HOLD_MARGIN_MS / 1000) < 1e-6
    rig.advance(106.0 - 0.002)
    assert note_ons_between(rig, 105.0, 105.01)       # beat 5: nobody strikes there
    assert not note_ons_between(rig, 105.5, 106.0)
    rig.advance(106.002)                # past the note's beat, within the hold: it waits
    assert not note_ons_between(rig, 106.0, 106.002)
    rig.t = 106.003                     # the player's first key opens a strike
    rig.engine.handle(NoteOn(rig.t, 0, 56, 90))
    rig.advance(106.02)                 # past the hold: the note still waits for the strike
    assert not note_ons_between(rig, 106.0, 106.02)
    rig.engine.handle(NoteOn(rig.t, 0, 60, 90))
    rig.engine.handle(NoteOn(rig.t, 0, 63, 90))
    rig.advance(106.05)
    ons = note_ons_between(rig, 106.0, 106.05)
    assert [p % 12 for _, p in ons] == [8]   # only Ab's root: C's was replaced, never sounded


def test_the_first_chord_marks_its_beat_as_one_the_player_strikes_on():
    """The chord that starts the clock is struck on beat 0, so the next bar's first beat
    waits for the player too: a change struck there, a few ms late, is answered alone,
    not after the old chord's note for those few ms (a flam), in 4/4 and in 3/4 alike."""
    for meter in ([4, 4], [3, 4]):
        rig = Rig(model=EveryBeat(), step=0.001)
        rig.preset = rig.preset.with_values(meter=meter)
        rig.engine.reconfigure(preset=rig.preset)
        held = rig.strike("C")
        bar = 100.0 + rig.preset.beats_per_bar
        rig.advance(bar + 0.003)            # the player's next chord comes 3 ms after the bar line
        rig.strike("Ab", held)
        rig.advance(bar + 0.05)
        assert [p % 12 for _, p in note_ons_between(rig, bar, bar + 0.05)] == [8], meter


def test_a_meter_the_model_cannot_play_is_refused_and_changes_nothing():
    """/riffd/meter or /riffd/preset with a meter the transformer never learned (13/8):
    MeterError, and the session plays on in its meter, as it was."""
    from riffd.models.protocol import MeterError
    rig = Rig("folk", model=load_model("onnx"))
    held = rig.strike("C")
    rig.advance(102.0)
    with pytest.raises(MeterError):
        rig.engine.reconfigure(preset=rig.preset.with_values(meter=[13, 8]))
    assert rig.engine.preset.meter == (4, 4)
    rig.advance(104.0)
    rig.strike("G", held)
    rig.advance(107.0)
    ons = [(t, n.pitch) for t, n in rig.started if t >= 104.0]
    assert ons and ons[0][1] % 12 in parse_chord("G").tones and rig.engine.stats["faults"] == 0
    rig.engine.reconfigure(preset=rig.preset.with_values(meter=[3, 4]))  # one it can: from the next step
    assert rig.engine.preset.beats_per_bar == 3.0


def test_a_new_style_goes_on_from_the_bars_just_played():
    """/riffd/preset with another style starts the transformer afresh; it is given the
    melody it played, with its chords (as far back as the form's memory), and its stream
    begins with the last 4 bars of it (before: the chord sounding alone). A new meter's
    bars are not the old ones: it is given nothing."""
    from riffd.models.protocol import HEARD_BARS
    rig, held = Rig("folk", model=load_model("onnx")), []
    for i, name in enumerate(["C", "Am", "F", "G"] * 3):
        rig.advance(100.0 + 4 * i)
        held = rig.strike(name, held)
    rig.advance(145.3)
    start = math.ceil(rig.clock.beat_at(rig.t) * 2) / 2
    played = [(n.start, n.pitch) for n in rig.engine.model.generated if n.start < start]
    rig.engine.reconfigure(preset=load_preset("jazz").with_values(tempo=60.0))
    model = rig.engine.model
    assert len(played) >= 30 and [(n.start, n.pitch) for n in model.given] == played
    rig.advance(148.0)
    heard = [b for b, _ in played if b >= start - 4 * HEARD_BARS]
    assert played[0][0] < model.times[0] <= heard[0] and [t for t, _ in rig.started if t >= 100.0 + start]
    rig.engine.reconfigure(preset=load_preset("folk").with_values(tempo=60.0, meter=[3, 4]))
    assert rig.engine.model.given == []


def test_in_three_four_the_melody_lands_on_a_waltz_bar_line():
    """serve --meter 3/4: let go on beat 11.5, the melody plays on to the 3/4 bar line
    nearest two bars on (18; in 4/4 it would be 16) and ends there on a chord tone."""
    rig = Rig("folk")
    rig.preset = rig.preset.with_values(meter=[3, 4])
    rig.engine.reconfigure(preset=rig.preset)
    rig.play(["C", "G7", "G7", "C"], let_go=111.5, beats=3.0)
    rig.advance(130.0)
    last_on, last_note = rig.started[-1]
    assert rig.stopped[-1][0] == pytest.approx(118.0, abs=0.02) and last_note.end == pytest.approx(18.0)
    assert last_note.pitch % 12 in parse_chord("C").tones and not rig.clock.running


def test_a_player_slower_than_the_tempo_set_is_followed_to_the_bar_line():
    """Playing alone (internal clock), a chord a bar 5 % slower than the preset's tempo:
    the clock follows the player's tempo as well as their phase, so the chords keep
    falling on riffd's bar lines and its melody keeps the player's bars. Following the
    phase alone, the fifth chord came a beat late, and the tenth two beats off."""
    rig = Rig("pop")
    held, bar_s = [], 4 * 1.05
    for k, name in enumerate(["C", "Am", "F", "G"] * 3):
        rig.advance(100.0 + k * bar_s)
        held = rig.strike(name, held)
    rig.advance(100.0 + 11 * bar_s + 0.1)
    assert rig.clock.tempo == pytest.approx(60.0 / 1.05, rel=0.01)
    assert rig.clock.beat_at(100.0 + 11 * bar_s) == pytest.approx(44.0, abs=0.05)
    assert rig.engine.chord_beat == 44.0
    rig.advance(100.0 + 12 * bar_s - 0.1)
    bar_line, sixteenth_s = 100.0 + 11 * bar_s, 1.05 / 4
    last = [(t - bar_line) / sixteenth_s for t, _ in rig.started if t > bar_line - 0.01]
    assert len(last) >= 3 and all(abs(x - round(x)) * sixteenth_s < 0.03 for x in last)  # on the player's sixteenths


def test_a_rolled_change_replaces_the_waiting_note_though_the_sending_thread_comes_first():
    """Found over JACK: a rolled chord (keys 6 ms apart) closes at the end of its window,
    where the waiting notes were due, and the sending thread sent the old chord's note
    before the poll that closed the strike could replace it."""
    rig = Rig(model=EveryBeat(), step=0.001)
    strike_every_two_beats(rig, "C", 4)
    rig.advance(106.003)
    for i, pitch in enumerate((56, 60, 63, 68)):  # Ab rolled bottom up: closes at 106.033
        rig.t = 106.003 + 0.006 * i
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        rig.engine.poll(rig.t)
    while rig.t < 106.06:
        rig.t = round(rig.t + 0.001, 6)
        rig.scheduler.run_due(rig.t)  # the sending thread wakes first on each step
        rig.engine.poll(rig.t)
    ons = note_ons_between(rig, 106.0, 106.06)
    assert [p % 12 for _, p in ons] == [8]  # Ab's root only: C's note never sounded


def test_a_slow_roll_keeps_the_waiting_note_until_its_third_pitch_class():
    """Ab rolled after C, 29 ms a key, its first two keys one pitch class (Ab2, Ab3),
    then Eb, then C at 87 ms: the strike stays open until its third pitch class, and the
    note that waited for it is Ab's; C's never sounds (it went at two windows before)."""
    rig = Rig(model=EveryBeat(), step=0.001)
    strike_every_two_beats(rig, "C", 4)
    rig.advance(106.003)
    for i, pitch in enumerate((44, 56, 63, 60)):
        rig.t = round(106.003 + 0.029 * i, 6)
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        if i < 3:
            rig.advance(round(rig.t + 0.029, 6))
    rig.advance(106.2)
    ons = note_ons_between(rig, 106.0, 106.2)
    assert [p % 12 for _, p in ons] == [8] and ons[0][0] >= 106.09, ons


def test_an_up_strum_is_answered_once():
    """F strummed up after Am, 15 ms a string: its top strings name F/A, its low ones F
    (only the bass moves). One answer, at the first name; the second neither cuts it
    nor strikes again, and the chord is F."""
    rig = Rig(model=EveryBeat(), step=0.001)
    held = strike_every_two_beats(rig, "Am", 4)
    rig.advance(106.0)
    for pitch in held:
        rig.engine.handle(NoteOff(rig.t, 0, pitch))
    for i, pitch in enumerate((65, 60, 57, 53, 48, 41)):
        rig.t = round(106.0 + 0.015 * i, 6)
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        rig.advance(round(rig.t + 0.015, 6))
    rig.advance(106.5)
    assert [p % 12 for _, p in note_ons_between(rig, 106.0, 106.5)] == [5]
    assert rig.engine.chord.name == "F"
    cut = [m for m in rig.sent if m[1] == 65 and (m[0] & 0xF0 == 0x80 or m[2] == 0)]
    assert not cut, rig.sent  # the answer, a beat long, still sounds


def test_an_oom_pahs_chord_is_named_with_its_bass_live():
    """A waltz's left hand, a beat a second: the bass alone on beat 1, the chord over it
    on beats 2 and 3. Live, each bar's change comes with its first "pah" (a beat late:
    the bass alone names nothing), named with the bass: C, not C/E; G7, not Bdim; C, not
    the two-note pah's Em. The answer to each change is its root (EveryBeat): C, G, C."""
    rig = Rig(model=EveryBeat(), step=0.002)
    names = []
    for bar, (bass, pah) in enumerate([(36, (64, 67, 72)), (43, (59, 62, 65)), (36, (64, 67))]):
        for beat in range(3):
            rig.advance(100.0 + bar * 3 + beat)
            keys = (bass,) if beat == 0 else pah
            for pitch in keys:
                rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
            rig.advance(rig.t + 0.3)  # staccato: let go before the next beat
            for pitch in keys:
                rig.engine.handle(NoteOff(rig.t, 0, pitch))
            if beat == 1:
                names.append(rig.engine.chord.name)
    assert names == ["C", "G7", "C"]
    answers = [note_ons_between(rig, pah, pah + 0.1)[-1][1] % 12 for pah in (101.0, 104.0, 107.0)]
    assert answers == [0, 7, 0], note_ons_between(rig, 100.0, 109.0)


def assert_a_restrike_sends_the_waiting_note_at_once(model, at):
    """F struck on beats 0, 2 and 4, then again at ``at`` s (just after beat 6)."""
    rig = Rig(model=model, step=0.001)
    held = strike_every_two_beats(rig, "F", 4)
    rig.advance(at)
    rig.strike("F", held)               # the same chord: the note goes when the strike closes
    rig.advance(106.01)
    ons = note_ons_between(rig, 106.0, 106.01)
    assert [p % 12 for _, p in ons] == [5] and ons[0][0] <= at + 0.003


def roll(rig, pitches, gap=0.006):
    """Keys ``gap`` s apart from now, as a hand rolls a chord."""
    for pitch in pitches:
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        rig.advance(rig.t + gap)


def test_a_restrike_sends_the_waiting_note_at_once():
    assert_a_restrike_sends_the_waiting_note_at_once(EveryBeat(), 106.001)


class ShortEveryBeat(EveryBeat):
    """EveryBeat's notes, a twentieth of a beat long (50 ms at the rig's 60 BPM)."""

    def _next_notes(self):
        return [MelodyNote(n.start, 0.05, n.pitch, n.velocity) for n in super()._next_notes()]


def test_a_note_shorter_than_the_wait_waits_for_the_strike_too():
    """Waiting notes are due a window after the strike (60 ms here); a shorter one used to
    stay where it was, and sounded the old chord's root as the new chord came in."""
    rig = Rig(model=ShortEveryBeat(), step=0.001)
    strike_every_two_beats(rig, "C", 4)
    rig.advance(106.003)
    roll(rig, (56, 60, 63, 68))         # Ab rolled: a change
    rig.advance(106.06)
    assert 0 not in [p % 12 for _, p in note_ons_between(rig, 106.0, 106.06)]  # C's note never sounds
    assert_a_restrike_sends_the_waiting_note_at_once(ShortEveryBeat(), 106.003)


def test_a_rolled_restrike_sends_the_waiting_note_once_its_keys_agree():
    """The strike's close comes twice the key gap after its last key (about 30 ms for a
    roll); a note need not wait for it once three keys name the chord already sounding."""
    rig = Rig(model=EveryBeat(), step=0.001)
    strike_every_two_beats(rig, "F", 4)
    rig.advance(106.003)
    roll(rig, (53, 57, 60, 65))         # F rolled: the third key agrees at 106.015
    rig.advance(106.06)
    ons = note_ons_between(rig, 106.0, 106.06)
    assert [p % 12 for _, p in ons] == [5] and ons[0][0] <= 106.017


def test_the_hold_follows_how_late_the_player_strikes():
    rig = Rig(model=EveryBeat(), step=0.001)
    held = rig.strike("C")
    assert rig.engine.hold_s() == HOLD_MS / 1000  # nothing known of the player yet
    for beat in range(2, 18, 2):        # on time and 8 ms late by turns (the internal clock follows their mean)
        rig.advance(100.0 + beat + 0.008 * (beat % 4 == 2))
        held = rig.strike("C", held)
    assert HOLD_MARGIN_MS / 1000 < rig.engine.hold_s() <= (HOLD_MARGIN_MS + 8.0) / 1000
    for beat in range(18, 34, 2):       # on time and 100 ms late by turns: the hold stops at its ceiling
        rig.advance(100.0 + beat + 0.1 * (beat % 4 == 2))
        held = rig.strike("C", held)
    assert rig.engine.hold_s() == HOLD_MS / 1000


def change_at(rig, held, name, stamp):
    """The keys ``held`` let go and ``name`` struck, stamped ``stamp`` s, handled now; the
    pitch classes riffd strikes from ``stamp`` to 60 ms after it."""
    for p in held:
        rig.engine.handle(NoteOff(stamp, 0, p))
    for p in parse_chord(name).voicing():
        rig.engine.handle(NoteOn(stamp, 0, p, 90))
    rig.advance(stamp + 0.06)
    return [p % 12 for _, p in note_ons_between(rig, stamp, stamp + 0.06)]


def test_the_hold_covers_keys_that_reach_the_engine_late():
    """Found over JACK under load: keys stamped on the beat reached the engine 1-7 ms later,
    after a 4 ms hold had let the old plan's note go, and the answer struck 0-3 ms after
    it (a flam). The hold now counts how late the engine heard the strikes, not the stamps."""
    for read_delay in (0.0, 0.006):
        rig = Rig(model=EveryBeat(), step=0.001)
        held = []
        for beat in range(0, 8, 2):     # C on beats 0, 2, 4 and 6, stamped on time
            rig.advance(100.0 + beat + read_delay)
            for p in held:
                rig.engine.handle(NoteOff(100.0 + beat, 0, p))
            held = parse_chord("C").voicing()
            for p in held:
                rig.engine.handle(NoteOn(100.0 + beat, 0, p, 90))
        assert abs(rig.engine.hold_s() - (HOLD_MARGIN_MS / 1000 + read_delay)) < 1e-6, read_delay
        rig.advance(108.0 + read_delay)  # Ab struck on beat 8, heard ``read_delay`` late
        assert change_at(rig, held, "Ab", 108.0) == [8], read_delay  # C's note never left: no flam


def test_a_note_on_a_striking_beat_waits_for_keys_still_unread():
    """A key stamped on the beat but read later than the hold (its strike not yet in the
    engine): the sending thread sees it waiting and holds the note, at most ``HOLD_MS``."""
    for unread_until, flam in ((108.012, False), (None, True)):
        unread = [False]
        rig = Rig(model=EveryBeat(), step=0.001, keys_waiting=lambda: unread[0])
        held = strike_every_two_beats(rig, "C", 6)   # on time: the hold is HOLD_MARGIN_MS
        rig.advance(108.0)
        unread[0] = unread_until is not None           # Ab's keys wait in the queue from 108.0
        rig.advance(unread_until or 108.012)
        unread[0] = False
        assert change_at(rig, held, "Ab", 108.0) == ([0, 8] if flam else [8]), unread_until
        assert rig.scheduler.stats["waited_for_keys"] == (0 if flam else 1)


def test_keys_that_never_come_hold_a_note_at_most_hold_ms():
    rig = Rig(model=EveryBeat(), step=0.001, keys_waiting=lambda: True)
    strike_every_two_beats(rig, "C", 6)
    rig.advance(108.05)
    ons = note_ons_between(rig, 108.0, 108.05)
    assert [p % 12 for _, p in ons] == [0] and ons[0][0] <= 108.0 + HOLD_MS / 1000 + 0.001


def test_planning_ahead_stops_between_notes_while_events_wait():
    waiting = [True]                    # keys keep arriving: one model step per poll
    rig = Rig(model=EveryBeat(), input_waiting=lambda: waiting[0])

    def steps(seconds):
        grew = []
        for _ in range(int(seconds / 0.01)):
            before = rig.engine.planned_until
            rig.advance(rig.t + 0.01)
            if before is not None and rig.engine.planned_until != before:
                grew.append(rig.engine.planned_until - before)
        return grew

    rig.strike("G")
    grew = steps(4.0)
    assert grew and max(grew) == 0.25 and rig.engine.stats["deadline_misses"] == 0
    assert len(rig.ons()) >= 4          # and the melody plays on
    waiting[0] = False                  # nothing waits: a poll plans a beat past the lookahead
    assert max(steps(4.0)) >= 1.0


class Counting(EveryBeat):
    """EveryBeat that counts the idle work it is given, and when."""

    def start(self, context):
        super().start(context)
        self.prepared, self.warmed = [], []

    def prepare(self):
        self.prepared.append(self.cursor)
        return False

    def warm(self):
        self.warmed.append(self.cursor)


def test_idle_work_runs_only_when_the_plan_is_ahead_and_no_event_waits():
    waiting = [True]
    model = Counting()
    rig = Rig(model=model, input_waiting=lambda: waiting[0])
    rig.strike("G")
    rig.advance(102.0)
    assert model.prepared == [] and model.warmed == []  # events kept waiting: no idle work
    waiting[0] = False
    rig.advance(104.0)
    assert len(model.prepared) > 50      # one piece per idle poll
    beat = rig.clock.beat_at(rig.t)
    assert all(c >= 1.0 for c in model.prepared) and model.cursor >= beat + rig.engine.lookahead
    # a warm-up call every WARM_S (10 ms) of idle time, not on every poll (1 ms steps)
    rig.step = 0.001
    before = len(model.warmed)
    rig.advance(105.0)
    assert 80 <= len(model.warmed) - before <= 101


def test_a_reaction_sounds_as_soon_as_its_pitch_is_chosen_and_ends_where_the_model_says():
    """The transformer chooses a length after the pitch (one more model call): a note
    already due is sent on the pitch alone (MelodyModel.on_onset), and the model's note
    then gives it its end; the OSC side hears of it only with that end."""
    at_pitch = []

    class LengthLast(MelodyModel):
        name = "length-last"

        def _next_notes(self):
            start, pitch = self.cursor, 60 + self.chord_at(self.cursor).root
            if self.on_onset:
                self.on_onset(start, pitch, 80)
            rig.scheduler.run_due(rig.t)  # what the sending thread sends meanwhile
            at_pitch.append((start, list(rig.sent), [n for _, n in rig.started]))
            self.cursor = start + 0.5
            return [MelodyNote(start, 0.4, pitch, 80)]

    rig = Rig(model=LengthLast())
    held = rig.strike("C")
    rig.advance(102.05)
    rig.strike("G", held)  # 0.05 beat late: it counts on beat 2, whose note is due at once
    rig.advance(102.1)
    start, sent, announced = [x for x in at_pitch if x[0] == 2.0][-1]  # planned again after G
    g, ch = 60 + parse_chord("G").root, rig.engine.channel
    assert [0x90 | ch, g, 80] in sent and all(n.pitch != g or n.start < 2.0 for n in announced)
    played = [n for _, n in rig.started if n.pitch == g and n.start >= 2.0]
    assert len(played) == 1 and abs(played[0].end - 2.4) < 1e-9  # announced with the model's end
    rig.advance(102.35)  # past the placeholder end (2.05 + 0.25 beats)
    assert any(n.pitch == g for n in rig.scheduler.sounding())
    rig.advance(102.45)
    assert not any(n.pitch == g for n in rig.scheduler.sounding())
    assert sum(m == [0x90 | ch, g, 80] for m in rig.sent) == sum(m == [0x80 | ch, g, 0] for m in rig.sent)


def test_a_late_answer_holds_on_instead_of_striking_the_next_due_note_ms_later():
    """Found over JACK at 160 BPM: a rolled chord closes about 30 ms after its first key
    (1/12 beat), so the model's short first note and the one after it were both due at
    once and went out 2-3 ms apart. One attack: the answer holds to the second note's end."""

    class ShortThenLong(MelodyModel):
        name = "short-then-long"

        def _next_notes(self):
            start, root = self.cursor, self.chord_at(self.cursor).root
            length, pitch = (0.05, 60 + root) if start == round(start) else (0.45, 64 + root)
            if self.on_onset:
                self.on_onset(start, pitch, 80)
            self.cursor = start + length
            return [MelodyNote(start, length, pitch, 80)]

    rig = Rig(model=ShortThenLong())
    held = rig.strike("C")
    rig.advance(102.12)
    before = len(rig.ons())
    rig.strike("G", held)  # 0.12 beat late (the clock follows 0.06): beat 2's notes (2.0-2.05, 2.05-2.5) are both due
    rig.advance(102.2)
    g, ch = 60 + parse_chord("G").root, rig.engine.channel
    assert rig.ons()[before:] == [[0x90 | ch, g, 80]]  # one attack, the answer's pitch
    rig.advance(102.45)
    assert any(n.pitch == g for n in rig.scheduler.sounding())  # held to the second note's end
    rig.advance(102.7)  # beat 2.5 at the tempo the clock now follows, a little slower
    assert not any(n.pitch == g for n in rig.scheduler.sounding())


def test_a_model_that_fails_its_rehearsal_leaves_the_rules_model_playing(caplog):
    """serve rehearses its model before it says ready; one that loaded but cannot play is
    reported in one line and the rules model plays, as for a file that cannot be loaded."""
    from riffd.daemon.serve import rehearsed
    from riffd.models.rules import RulesModel

    class Broken(RulesModel):
        name = "broken"

        def _next_notes(self):
            raise RuntimeError("weights corrupt\nmore detail")
    preset = load_preset("pop")
    fine = RulesModel()
    assert rehearsed(fine, preset) is fine
    model = rehearsed(Broken(), preset)
    assert type(model) is RulesModel
    said = [r.getMessage() for r in caplog.records if "before the first chord" in r.getMessage()]
    assert said == ["model broken failed before the first chord (weights corrupt): the rules model plays"]


def test_keys_in_sees_only_note_ons_the_engine_takes():
    import queue

    from riffd.daemon.engine import ALL_BUT_DRUMS
    from riffd.daemon.serve import keys_in
    events = queue.Queue()
    events.put(ClockTick(1.0))
    events.put(NoteOff(1.0, 0, 60))
    events.put(NoteOn(1.0, 9, 36, 100))   # a drum key: never a chord
    assert not keys_in(events, ALL_BUT_DRUMS)
    events.put(NoteOn(1.0, 0, 60, 90))
    assert keys_in(events, ALL_BUT_DRUMS) and not keys_in(events, {3})
    assert events.qsize() == 4            # it looks, it takes nothing


def test_in_channel_takes_lists_and_ranges_and_refuses_what_it_cannot_read():
    from riffd.daemon.cli_common import BadInput, parse_channels
    assert parse_channels("default") is None and parse_channels("all") == set(range(1, 17))
    assert parse_channels("1,3-5,16") == {1, 3, 4, 5, 16}
    for text, says in (("1-", "give 'all'"), ("-3", "give 'all'"), ("1,,2", "give 'all'"),
                       ("3-1", "3-1 runs backwards (write 1-3)"), ("0", "channels are 1-16"),
                       ("9-17", "channels are 1-16")):
        with pytest.raises(BadInput) as err:
            parse_channels(text)
        assert says in err.value.message, text


def test_a_tune_played_over_held_chords_is_heard_as_melody_and_never_replans():
    """The left hand holds a chord a bar, the right hand plays a tune an octave and more
    above, passing notes among it: the engine hears two chord changes, not one a note,
    and the model hears the tune (its notes join the melody stream)."""
    rig = Rig()
    heard = []
    extend = rig.engine.model.extend
    rig.engine.model.extend = lambda items: (heard.extend(n for n in items if isinstance(n, MelodyNote)), extend(items))
    held = rig.strike("C")
    for k, pitch in enumerate([74, 76, 77, 79, 71, 72, 74, 76]):  # D E F G B C D E over C, then over G
        rig.advance(100.0 + k * 0.5 + 0.25)
        if k == 4:
            held = rig.strike("G", held)
            rig.advance(rig.t + 0.1)
        rig.engine.handle(NoteOn(rig.t, 0, pitch, 90))
        rig.advance(rig.t + 0.2)
        rig.engine.handle(NoteOff(rig.t, 0, pitch))
    rig.advance(rig.t + 0.5)
    assert rig.engine.stats["chord_changes"] == 2 and rig.engine.chord.name == "G"
    assert [n.pitch for n in heard][-8:] == [74, 76, 77, 79, 71, 72, 74, 76]


def test_the_melody_is_as_loud_as_the_player():
    """Chords struck softly (velocity 40) get a softer melody than the same struck hard
    (120), by the difference (the preset's velocity_follow 1: its velocity 90 moves by the
    strike's mean velocity minus 80), a restrike of the sounding chord included; with
    velocity_follow 0 the melody keeps the preset's velocity."""
    def velocities(follow, plays):
        rig = Rig()
        rig.engine.reconfigure(preset=rig.preset.with_values(velocity_follow=follow))
        held, out = [], []
        for name, velocity in plays:
            mark = len(rig.ons())
            held = rig.strike(name, held, velocity=velocity)
            rig.advance(rig.t + 4.0)
            out.append([m[2] for m in rig.ons()[mark:]])
        rig.scheduler.panic()
        return out

    soft, loud, soft_again = velocities(1.0, [("C", 40), ("F", 120), ("F", 40)])
    assert soft and loud and soft_again
    assert max(soft) < 70 and min(loud) > 110 and max(soft_again) < 70, (soft, loud, soft_again)
    for bar in velocities(0.0, [("C", 40), ("F", 120)]):
        assert all(75 <= v <= 105 for v in bar), bar


def test_going_idle_ends_a_note_the_stopped_clock_would_never_reach():
    """A long note sounding when the player has been silent two bars: the accompaniment
    rests and the internal clock stops, and the note ends then, not ten beats into the
    next phrase (a stopped clock never reaches its end)."""
    class Long(MelodyModel):
        name = "long"

        def _next_notes(self):
            start = self.cursor
            self.cursor = start + 12.0
            return [MelodyNote(start, 12.0, 72, 80)]

    rig = Rig(model=Long())
    held = rig.strike("F")
    rig.advance(101.0)
    for p in held:
        rig.engine.handle(NoteOff(rig.t, 0, p))
    rig.advance(111.0)                  # two bars of silence (8 beats at 60 BPM) and more
    assert not rig.clock.running and not rig.scheduler.sounding()
    ons = sum(m[0] & 0xF0 == 0x90 and m[2] > 0 for m in rig.sent)
    offs = sum(m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0) for m in rig.sent)
    assert ons >= 1 and offs == ons, rig.sent
