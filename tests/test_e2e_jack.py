"""riffd serve end to end: real JACK MIDI ports, a real chorale played in real time."""
import ast
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest

from riffd.bridges.jackrig import Player, play_chords, play_clocked, play_timeline
from riffd.music.chords import recognize
from riffd.presets import load_preset

from conftest import RIFFD, realtime_allowed, run_riffd

pytestmark = pytest.mark.jack


def start_serve(*args):
    proc = subprocess.Popen([*RIFFD, "serve", "--midi-api", "jack", *args],
                            stderr=subprocess.PIPE, text=True)
    proc.early = []  # log lines before "ready" (a model fallback, say)
    while "ready" not in (line := proc.stderr.readline()):
        assert line, "".join(proc.early) + proc.stderr.read()
        proc.early.append(line)
    return proc


@contextmanager
def serving(*args):
    """``riffd serve`` with a player on its ports; killed if still running at the end."""
    proc = start_serve(*args)
    player = Player()
    try:
        time.sleep(0.3)
        yield proc, player
    finally:
        player.close()
        if proc.poll() is None:
            proc.kill()


def stop_serve(proc):
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def is_on(m):
    return m[0] & 0xF0 == 0x90 and m[2] > 0


def is_off(m):
    return m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0)


def assert_balanced(messages):
    """Every note-on has its note-off, and nothing sounds at the end."""
    sounding = {}
    for _, m in messages:
        key = (m[0] & 0x0F, m[1])
        if is_on(m):
            assert key not in sounding, f"note-on {key} while it already sounds"
            sounding[key] = True
        elif is_off(m):
            assert sounding.pop(key, None), f"note-off {key} without a note-on"
    assert not sounding, f"left sounding: {sorted(sounding)}"


@pytest.mark.parametrize("model", ["rules", "markov", "riff-chorale"])  # the last: the preset's own
def test_serve_accompanies_a_chorale(jack, chorale_piece, model):
    preset = load_preset("chorale")
    with serving("--preset", "chorale", "--model", model, "--tempo", "240", "--seed", "1") as (proc, player):
        seconds_per_beat = 0.25
        t0 = time.monotonic() + 0.2
        struck = play_chords(player, chorale_piece.chords, seconds_per_beat, t0)  # all 54 chords
        time.sleep(0.2)
        code, err = stop_serve(proc)
        time.sleep(0.2)
        messages = player.messages()
    assert code == 0, err
    assert "stopped after panic" in err
    stats = ast.literal_eval(err.split("stopped after panic; ", 1)[1].splitlines()[0])
    # the engine, the reader and the sender at SCHED_FIFO wherever the system grants it
    assert (set(stats["realtime"]) == {"engine", "scheduler", "midi_in"}) == realtime_allowed(), stats
    assert_balanced(messages)
    ons = [(t, m) for t, m in messages if is_on(m)]
    assert len(ons) > 30
    low, high = preset.register
    assert all(low <= m[1] <= high for _, m in ons)
    assert all(m[0] & 0x0F == preset.channel - 1 for _, m in ons)
    # the note that answers each chord: the first note-on after the chord is struck and before
    # the next one, whenever it leaves (no timing window: a loaded machine plays late, not wrong)
    times = [s[0] for s in struck] + [float("inf")]
    answered = good = 0
    for i, (_, _, played) in enumerate(struck):
        first = next((m for t, m in ons if times[i] <= t < times[i + 1]), None)
        if first is None:
            continue
        chord = recognize(played)
        tones = {p % 12 for p in played} | (chord.tones if chord else set())
        answered += 1
        good += first[1] % 12 in tones
    assert answered >= 0.6 * len(struck), (answered, len(struck))
    # Bach's own sopranos: 71 % chord tones on the beat over 60 chorales (this one's: 83 %);
    # pitches drawn at random from the register: 26 %
    assert good / answered >= 0.5, (good, answered)
    # after SIGTERM: CC123 and sustain off on the melody channel
    ch = preset.channel - 1
    assert [0xB0 | ch, 123, 0] in [m for _, m in messages]


def test_a_call_is_answered_and_taken_up_through_jack(jack, tmp_path):
    """Call-response through real ports: a 4-bar call (a chord a bar, C then G, and a
    tune over them with its note-offs) let go, then silence; riffd answers over the
    call's changes, and with a preset whose ``repeat`` is 1 the answer plays the call's
    tune again (its pitches in order, from the call's second key: on the first beat, a
    change where the call rested, the answer plays a note of its own). Nothing is left
    sounding."""
    preset = tmp_path / "echo.toml"
    preset.write_text('name = "echo"\ntempo = 240\nregister = [62, 86]\nrepeat = 1.0\nphrase_bars = 4\n'
                      'model = "rules"\nstyle = "folk"\n')
    tune = [(0.5, 76, 1.0), (1.5, 74, 0.5), (2.0, 72, 1.5), (4.0, 79, 0.5), (4.5, 77, 0.5), (5.0, 76, 2.0),
            (8.5, 74, 0.5), (9.0, 71, 0.5), (9.5, 74, 0.5), (10.0, 79, 2.0), (12.5, 77, 0.5), (13.0, 76, 1.0)]
    beat = 0.25  # s at 240 BPM
    timeline = [(0.0, [0x90, p, 90]) for p in (48, 52, 55)]
    timeline += [(8 * beat, [0x80, p, 0]) for p in (48, 52, 55)] + [(8 * beat, [0x90, p, 90]) for p in (43, 47, 50)]
    timeline += [(16 * beat, [0x80, p, 0]) for p in (43, 47, 50)]
    timeline += [m for at, pitch, length in tune
                 for m in ((at * beat, [0x90, pitch, 90]), ((at + length - 0.1) * beat, [0x80, pitch, 0]))]
    timeline.sort(key=lambda m: m[0])
    with serving("--preset", str(preset), "--mode", "call-response", "--seed", "1") as (proc, player):
        t0 = time.monotonic() + 0.2
        play_timeline(player, timeline, t0)
        time.sleep(20 * beat + 1.0)  # the silence, a bar, the answer's 4 bars and a second's slack
        code, err = stop_serve(proc)
        messages = player.messages()
    assert code == 0, err
    assert_balanced(messages)
    answer = [m[1] for t, m in messages if is_on(m) and t > t0 + 16 * beat]
    call = [pitch for _, pitch, _ in tune[1:]]
    assert any(answer[k:k + len(call)] == call for k in range(len(answer))), (answer, call)


def test_a_footswitch_ends_a_call_through_jack(jack):
    """serve --end-call-cc 67: a call whose chord is still held is never over by silence;
    the switch pressed (CC 67, 127) ends it, and riffd answers from the next bar line.
    Before the switch nothing is played; nothing is left sounding."""
    with serving("--preset", "folk", "--model", "rules", "--mode", "call-response", "--tempo", "240",
                 "--end-call-cc", "67", "--seed", "1") as (proc, player):
        for pitch in (48, 52, 55):
            player.send([0x90, pitch, 90])
        time.sleep(2.5)  # ten beats held: silence would never come
        pressed = player.send([0xB0, 67, 127])
        time.sleep(4 * 0.25 + 2 * 4 * 0.25 + 1.0)  # a bar at most to its start, the folk answer's 4 bars, slack
        player.send([0xB0, 67, 0])
        for pitch in (48, 52, 55):
            player.send([0x80, pitch, 0])
        code, err = stop_serve(proc)
        messages = player.messages()
    assert code == 0, err
    assert not [m for t, m in messages if is_on(m) and t < pressed], "riffd played during the call"
    assert len([m for t, m in messages if is_on(m) and t > pressed]) >= 4, err[-1500:]
    assert_balanced(messages)


def test_serve_follows_midi_clock_and_stop_silences(jack):
    with serving("--preset", "pop", "--model", "rules", "--clock", "midi", "--seed", "2") as (proc, player):
        bpm, ppqn = 150.0, 24
        spc = 60.0 / bpm / ppqn
        t0 = time.monotonic() + 0.05
        chords = {0: (48, 52, 55), 4 * ppqn: (45, 48, 52), 8 * ppqn: (41, 45, 48)}
        _, held = play_clocked(player, chords, 10 * ppqn, spc, t0, velocity=90)
        stop_at = player.send([0xFC])
        time.sleep(0.3)
        during = [(t, m) for t, m in player.messages() if t < stop_at]
        after_stop = [(t, m) for t, m in player.messages() if t >= stop_at]
        for p in held:
            player.send([0x80, p, 0])
        code, err = stop_serve(proc)
        messages = player.messages()
    assert code == 0, err
    ons = [(t, m) for t, m in during if is_on(m)]
    assert len(ons) >= 8
    # notes follow the clock: nine in ten start within 0.4 of a sixteenth (40 ms at 150 BPM) of
    # the clock's grid, room for the hold on beats (at most 15 ms) and a loaded machine; notes
    # placed by a wrong tempo or phase would spread evenly over +-0.5
    errors = sorted(abs((t - t0) / (6 * spc) - round((t - t0) / (6 * spc))) for t, _ in ons)
    assert errors[int(0.9 * len(errors)) - 1] < 0.4, errors
    # stop: every sounding note off, and no note-on after it
    assert not [m for _, m in after_stop if is_on(m)]
    assert any(m[1] == 123 for _, m in after_stop if m[0] & 0xF0 == 0xB0)
    assert_balanced(messages)


def test_a_controllers_panic_silences_riffd_until_the_next_chord(jack):
    """CC120 (All Sound Off) on every channel, keys still down: riffd's notes end at once
    and none follows until a chord is struck again."""
    with serving("--preset", "pop", "--model", "rules", "--seed", "3") as (proc, player):
        for p in (48, 52, 55):
            player.send([0x90, p, 90])
        time.sleep(1.0)
        panic_at = time.monotonic()
        for channel in range(16):
            player.send([0xB0 | channel, 120, 0])
        time.sleep(1.5)
        # a quarter second's slack: a note sent as the panic arrived, on a loaded machine
        quiet = [m for t, m in player.messages() if t > panic_at + 0.25 and is_on(m)]
        struck_at = time.monotonic()
        for p in (45, 48, 52):
            player.send([0x90, p, 90])
        time.sleep(0.8)
        for p in (48, 52, 55, 45):
            player.send([0x80, p, 0])
        code, err = stop_serve(proc)
        messages = player.messages()
    assert code == 0, err
    assert [m for t, m in messages if t < panic_at and is_on(m)]
    assert quiet == []
    assert [m for t, m in messages if t > struck_at and is_on(m)]
    assert_balanced(messages)


def test_missing_port_is_one_clear_line_and_exit_2(jack):
    result = run_riffd("serve", "--midi-api", "jack", "--in", "no such synth", timeout=30)
    assert result.returncode == 2
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("riffd:")]
    assert len(line) == 1 and "no MIDI input port matches 'no such synth'" in line[0]


def test_ports_lists_riffd_ports(jack):
    proc = start_serve("--model", "rules")
    try:
        result = run_riffd("ports", "--midi-api", "jack", timeout=30)
    finally:
        stop_serve(proc)
    assert result.returncode == 0
    assert "riffd in" in result.stdout and "riffd out" in result.stdout


def test_a_key_still_in_rtmidis_queue_is_read_at_once(jack, monkeypatch):
    """Before a note-on that a key just struck may replace, the sending thread reads
    RtMidi's queue itself (MidiInput.read_now) instead of waiting for the reader's next
    poll. With the poll stretched to 10 s, the key waits in RtMidi's queue until then."""
    import queue

    from riffd.bridges import midi
    from riffd.bridges.events import NoteOn

    monkeypatch.setattr(midi, "POLL_S", 10.0)
    events: queue.Queue = queue.Queue()
    port = midi.MidiInput(events, "jack", client_name="riffd-test-in")
    player = Player(into=port.port_name, record=None)
    try:
        time.sleep(0.2)  # the reader's first poll is done: it sleeps for 10 s now
        player.send([0x90, 60, 100])
        time.sleep(0.2)  # a JACK period (2.7 ms) brings it into RtMidi's queue
        assert events.empty() and port.received == 0
        assert port.read_now() == 1
        event = events.get_nowait()
        assert type(event) is NoteOn and event.pitch == 60 and event.velocity == 100
        assert port.read_now() == 0
    finally:
        player.close()
        port.close()
    assert port.read_now() == 0  # stopped: no read on a closed port
