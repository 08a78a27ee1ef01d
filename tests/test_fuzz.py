"""Fuzzing with hypothesis: random MIDI messages into the input bridge and the engine,
random and truncated MIDI files into `riffd render`, random preset TOML, random chord names,
random render requests, random melodies for the transformer to hear, random calls for it
to answer, random OSC bundles into the OSC bridge.

The number of cases per test is EXAMPLES (docs/measured.md quotes them)."""
from __future__ import annotations

import contextlib
import io
import math
import queue
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from riffd.bridges.events import from_midi_bytes
from riffd.bridges.midi import Stamper
from riffd.bridges.osc import OscBridge
from riffd.bridges.osctable import TABLE, OscInputError, check
from riffd.daemon.clock import InternalClock, MidiClock
from riffd.daemon.engine import Engine
from riffd.daemon.scheduler import Scheduler
from riffd.models import load_model
from riffd.music.chords import parse_chord
from riffd.daemon.request import KEYS, RequestError, read_request, request_preset, request_seed, request_song
from riffd.presets import PresetError, load_preset

EXAMPLES = {"messages": 300, "files": 150, "presets": 300, "chord names": 2000, "requests": 300, "heard": 200,
            "calls": 60, "osc": 300}
FUZZ = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

byte = st.integers(0, 255)
data = st.integers(0, 127)
channel_message = st.builds(lambda kind, ch, a, b: [kind | ch, a, b], st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0xE0]),
                            st.sampled_from([0, 1, 9, 15]), data, data)
realtime = st.sampled_from([[0xF8], [0xFA], [0xFB], [0xFC], [0xFE], [0xFF]])
song_position = st.builds(lambda a, b: [0xF2, a, b], data, data)
sysex = st.lists(data, max_size=20).map(lambda body: [0xF0, *body, 0xF7])
running_status = st.lists(data, min_size=1, max_size=4)          # data bytes without a status
truncated = channel_message.flatmap(lambda m: st.integers(0, 2).map(lambda n: m[:n]))
garbage = st.lists(byte, max_size=8)
message = st.one_of(channel_message, realtime, song_position, sysex, running_status, truncated, garbage)


def balanced(sent) -> bool:
    sounding = set()
    for m in sent:
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            if (m[0] & 0x0F, m[1]) in sounding:
                return False
            sounding.add((m[0] & 0x0F, m[1]))
        elif m[0] & 0xF0 == 0x80:
            sounding.discard((m[0] & 0x0F, m[1]))
    return not sounding


@settings(max_examples=EXAMPLES["messages"], **FUZZ)
@given(st.lists(st.tuples(message, st.floats(0.0, 0.05)), max_size=120))
def test_random_midi_messages_never_break_the_bridge_or_the_engine(stream):
    """Running status, SysEx, truncated messages, channel 10, clocks and song positions in
    any order: the bridge translates or drops each; the engine never raises, and after
    the final panic no note is left sounding."""
    drive(load_model("rules"), "accompany", stream)


@settings(max_examples=EXAMPLES["calls"], **FUZZ)
@given(st.lists(st.tuples(st.integers(21, 108), st.floats(0.0, 8.0), st.floats(0.005, 2.0)), max_size=40),
       st.floats(0.05, 8.0))
def test_random_calls_are_heard_and_answered_by_the_transformer(transformer, keys, let_go):
    """Call-response on the transformer, internal clock: a C chord held ``let_go`` s, and
    any keys at any times over it (lone keys over a chord are a call's tune, forced into
    the model's stream at the answer, and with ``repeat`` 1 taken up by it: models/form.py),
    then 4 s of silence: an answer, no fault, nothing left sounding after the final panic."""
    from riffd.bridges.events import NoteOff, NoteOn
    t, sent = [100.0], []
    clock = InternalClock(120.0)
    scheduler = Scheduler(clock, sent.append, now=lambda: t[0])
    engine = Engine(transformer, load_preset("pop").with_values(repeat=1.0), clock, scheduler, mode="call-response",
                    seed=1, now=lambda: t[0])
    events = [(0.0, NoteOn, p) for p in (48, 52, 55)] + [(let_go, NoteOff, p) for p in (48, 52, 55)]
    events += [e for pitch, at, held in keys for e in ((at, NoteOn, pitch), (at + held, NoteOff, pitch))]
    events.sort(key=lambda e: e[0])
    for step in range(int((max(e[0] for e in events) + 4.0) / 0.01) + 1):
        t[0] = 100.0 + step * 0.01
        while events and events[0][0] <= step * 0.01:
            _, kind, pitch = events.pop(0)
            engine.handle(kind(t[0], 0, pitch, 90) if kind is NoteOn else kind(t[0], 0, pitch))
        engine.poll(t[0])
        scheduler.run_due(t[0])
    assert engine.stats["faults"] == 0 and engine.stats["answers"] >= 1
    scheduler.panic()
    assert not scheduler.sounding() and balanced(sent)


def drive(model, mode: str, stream) -> None:
    t = [100.0]
    clock = MidiClock()
    sent: list[list[int]] = []
    scheduler = Scheduler(clock, sent.append, now=lambda: t[0])
    engine = Engine(model, load_preset("pop"), clock, scheduler, mode=mode, seed=1, now=lambda: t[0])
    stamper = Stamper()
    for raw, gap in stream:
        t[0] += gap
        event = from_midi_bytes(raw, stamper.stamp(gap, t[0]))
        if event is not None:
            engine.handle(event)
        engine.poll(t[0])
        scheduler.run_due(t[0])
    assert engine.stats["faults"] == 0
    scheduler.panic()
    assert not scheduler.sounding() and balanced(sent)


@pytest.fixture(scope="module")
def good_file(chorale_piece, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "chorale.mid"
    chorale_piece.to_midi(with_melody=False).save(path)
    return path.read_bytes()


def render_in_process(path: Path, out: Path) -> tuple[int, str]:
    """`riffd render` through its real entry point, in this process (hypothesis runs it
    hundreds of times); returns (exit code, stderr)."""
    from riffd.daemon.cli import main
    err = io.StringIO()
    argv = sys.argv
    sys.argv = ["riffd", "render", str(path), "-o", str(out), "--model", "rules", "--seed", "1"]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code or 0
    finally:
        sys.argv = argv
    return code, err.getvalue()


@settings(max_examples=EXAMPLES["files"], **FUZZ)
@given(st.data())
def test_random_and_truncated_midi_files_exit_2_with_one_line(good_file, data):
    kind = data.draw(st.sampled_from(["random", "truncated", "corrupted"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=300))
    elif kind == "truncated":
        blob = good_file[:data.draw(st.integers(0, len(good_file) - 1))]
    else:
        blob = bytearray(good_file)
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    with tempfile.TemporaryDirectory() as folder:
        path, out = Path(folder) / "in.mid", Path(folder) / "out.mid"
        path.write_bytes(blob)
        code, err = render_in_process(path, out)
        written = sorted(p.name for p in Path(folder).iterdir())
    assert "Traceback" not in err
    if code == 0:                       # corrupted yet readable: a full file is written
        assert written == ["in.mid", "out.mid"]
    else:
        assert code == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("riffd: error:") and "in.mid" in lines[0], err
        assert written == ["in.mid"]    # nothing written, not even a temporary file


toml_key = st.one_of(st.sampled_from(["tempo", "meter", "swing", "scale", "register", "density", "grid",
                                      "temperature", "top_p", "mode", "model", "channel", "velocity",
                                      "strike_window_ms", "name"]),
                     st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
toml_value = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False), st.booleans(),
                       st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10), st.lists(st.integers(-200, 200), max_size=3))


def toml_line(key, value) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    elif isinstance(value, list):
        text = "[" + ", ".join(str(v) for v in value) + "]"
    else:
        text = repr(value)
    return f"{key} = {text}"


@settings(max_examples=EXAMPLES["presets"], **FUZZ)
@given(st.dictionaries(toml_key, toml_value, max_size=6), st.booleans(), st.integers(0, 200))
def test_random_preset_toml_is_loaded_or_named_by_file_and_key(values, break_it, cut):
    text = "\n".join(toml_line(k, v) for k, v in values.items()) + "\n"
    if break_it:
        text = text[:cut] + "\n= [\n" + text[cut:]      # malformed TOML, wherever it lands
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.toml"
        path.write_text(text)
        try:
            preset = load_preset(path)
        except PresetError as exc:
            message = str(exc)
            assert str(path) in message and "\n" not in message.strip()
            assert break_it or any(f"'{k}'" in message for k in values), message
            return
    assert not break_it                                 # a broken file never loads
    for key, value in values.items():
        assert getattr(preset, key) in (value, tuple(value) if isinstance(value, list) else value)


# the letters of chord names, so that most texts come close to a name (G13#9, Dm(b6)/F, CΔ9)
name_text = st.text("ABCDEFGabcdefgh#b♭♯mM7913254-+o°øΔ^()/, addsusmajminalt", max_size=14)


@settings(max_examples=EXAMPLES["chord names"], **FUZZ)
@given(name_text)
def test_random_chord_names_parse_to_a_chord_whose_name_parses_back_or_raise_value_error(text):
    try:
        chord = parse_chord(text)
    except ValueError as error:
        assert repr(text) in str(error)  # the error names the text it refused
        return
    assert parse_chord(chord.name) == chord, (text, chord.name)
    voiced = chord.voicing()
    assert voiced[0] % 12 == chord.bass and {p % 12 for p in voiced} == set(chord.tones) | {chord.bass}


# each key's plausible values (a lead sheet's names and bar lines, a bundled preset) and
# a few of other JSON types, so that most requests get as far as their chords
junk = [None, True, -1, 0.5, "", [], {}]
names = st.sampled_from(["Am", "F", "C", "G7", "Dm7b5", "G13#9", "Cmaj9#11", "N.C.", "%", "E5", "Xq", "B°7", "|"])
lead_sheet = st.lists(names, min_size=1, max_size=12).map(" ".join)
request_body = st.fixed_dictionaries(
    {"chords": st.one_of(lead_sheet, st.lists(st.one_of(names, lead_sheet), min_size=1, max_size=4),
                         st.sampled_from(junk))},
    optional={"bars": st.one_of(st.integers(-2, 300), st.sampled_from(junk)),
              "tempo": st.one_of(st.floats(10, 500), st.sampled_from(junk)),
              "meter": st.sampled_from(["3/4", "6/8", [5, 4], "12/8", "7/8", "3/5", "4/32", "waltz", *junk]),
              "preset": st.sampled_from(["pop", "folk", "chorale", "trance", "nope", *junk]),
              "seed": st.one_of(st.integers(0, 2**63 - 1), st.sampled_from(junk))})


@settings(max_examples=EXAMPLES["requests"], **FUZZ)
@given(request_body)
def test_random_requests_give_a_song_or_one_clear_error(body):
    """A request with any values of any JSON type: a song over its chords at its
    preset's meter, or RequestError / PresetError in one line, never another error."""
    import json
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "request.json"
        path.write_text(json.dumps(body))
        try:
            request = read_request(path)
            preset = request_preset(request, "pop")
            request_seed(request, None)
            song, chords = request_song(request, preset)
        except (RequestError, PresetError) as exc:
            assert str(exc) and "\n" not in str(exc).strip()
            return
    assert set(body) <= set(KEYS) and chords and song.time_signatures[0][1:] == tuple(preset.meter)


@pytest.fixture(scope="module")
def transformer():
    return load_model("onnx")


heard_note = st.tuples(st.floats(0.0, 40.0), st.floats(0.01, 6.0), st.integers(21, 108))
chord_or_none = st.sampled_from(["C", "Am", "F", "G7", "Bb", "F#m7b5", "Ebmaj7", None])


@settings(max_examples=EXAMPLES["heard"], **FUZZ)
@given(st.lists(heard_note, max_size=60), st.lists(st.tuples(st.floats(0.0, 48.0), chord_or_none), max_size=24),
       st.sampled_from([(4, 4), (3, 4), (6, 8), (2, 2), (5, 4)]), st.floats(0.0, 44.0), st.floats(-8.0, 44.0),
       st.lists(heard_note, max_size=20), st.floats(0.0, 12.0))
def test_random_melodies_heard_by_the_transformer_give_one_voice_after_the_cursor(transformer, given_notes, changes,
                                                                                 meter, start, since, keys, skip):
    """Any given melody (overlapping, out of order, past the cursor, before ``heard_since``)
    over any chords in any meter, then live keys and a rollback past the cursor (a call it
    listened to): the transformer hears what lies before the cursor and plays one voice
    from it, with no error (its stream's forced notes and chords; a chord in a bar with no
    note once went to position -1)."""
    from riffd.models.protocol import ChordAt, Context, MelodyNote
    notes = [MelodyNote(b, d, p, 80) for b, d, p in given_notes]
    chords = ([ChordAt(b, parse_chord(c) if c else None) for b, c in sorted(changes, key=lambda change: change[0])]
              or [ChordAt(0.0, parse_chord("C"))])
    preset = load_preset("folk").with_values(meter=list(meter))
    transformer.start(Context(preset, seed=1, start_beat=start, chords=chords, notes=notes, heard_since=since))
    played = list(transformer.generate(start + 8.0))
    transformer.extend([MelodyNote(start + 8.0 + b / 8, d, p, 80) for b, d, p in keys])
    transformer.rollback(start + 8.0 + skip)
    played += list(transformer.generate(start + 16.0 + skip))
    assert all(n.start >= start - 1e-9 and 21 <= n.pitch <= 108 for n in played)
    assert all(b.start >= a.start + 1e-9 for a, b in zip(played, played[1:]))


# OSC strings are UTF-8 (no lone surrogates) and end at a NUL
osc_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
osc_value = st.one_of(st.integers(-2**31, 2**31 - 1), st.floats(width=32), osc_text,
                      st.sampled_from([0, 60, 127, 1.0, 0.5, math.inf, -math.inf, math.nan,
                                       "Am", "C/E", "pop", "N.C."]))


@pytest.fixture(scope="module")
def osc_bridge():
    bridge = OscBridge(queue.Queue(), "127.0.0.1", 0)
    yield bridge
    bridge.close()


def osc_arguments(address: str):
    """Arguments for ``address``: as many as its table entry takes (a repeated one 0-3
    times), or any count; each of any OSC type."""
    spec = TABLE[address]
    fitting = st.integers(0, 3).map(lambda k: len(spec.args) + k * (spec.repeat is not None))
    return st.one_of(fitting, st.integers(0, 6)).flatmap(lambda n: st.lists(osc_value, min_size=n, max_size=n))


@settings(max_examples=EXAMPLES["osc"], **FUZZ)
@given(st.lists(st.sampled_from(sorted(TABLE)).flatmap(lambda a: st.tuples(st.just(a), osc_arguments(a))),
                min_size=1, max_size=4), st.binary(max_size=64))
def test_random_osc_messages_are_queued_typed_or_answered_with_an_error(osc_bridge, messages, noise):
    """Each of riffd's addresses with any arguments (NaN and infinities among the floats),
    several to a bundle, then random bytes: the bridge queues an event for each message
    the table takes and counts an error for each other one; nothing raises (an infinite
    float for an int raised OverflowError past the check, found by a probe with NaN and
    infinities, and the bundle's later messages were lost)."""
    bundle, taken = OscBundleBuilder(IMMEDIATELY), 0
    for address, args in messages:
        built = OscMessageBuilder(address=address)
        for value in args:
            built.add_arg(value)
        message = built.build()
        bundle.add_content(message)
        try:
            check(address, OscPacket(message.dgram).messages[0].message.params)
            taken += 1
        except OscInputError:
            pass
    events, errors = osc_bridge.queue, osc_bridge.counts["errors"]
    while not events.empty():
        events.get_nowait()
    assert osc_bridge.take(bundle.build().dgram, ("127.0.0.1", 9)) == taken == events.qsize()
    assert osc_bridge.counts["errors"] - errors == len(messages) - taken
    osc_bridge.take(noise, ("127.0.0.1", 9))  # an event or an error, never an exception
