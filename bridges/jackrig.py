"""Real JACK MIDI for the tests and `riffd bench latency`: a dummy JACK server, and a
player that plays into riffd's ports and records what comes back. Not used by serve."""
from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import rtmidi


class JackServer:
    """A running ``jackd``: its ``name``, whether it runs ``realtime``, its log (stderr)."""

    def __init__(self, name: str, log_path: str, realtime: bool):
        self.name, self.log_path, self.realtime = name, log_path, realtime

    def xruns(self) -> dict[str, int]:
        """xruns jackd logged so far: ``clients``, a client that did not finish its cycle
        (the fault this project guards against), and ``driver``, the dummy driver's own
        timer woken late (a loaded machine)."""
        with open(self.log_path, errors="replace") as log:
            lines = log.readlines()
        return {"clients": sum("was not finished" in line for line in lines),
                "driver": sum("Driver::Process XRun" in line for line in lines)}

    def __str__(self) -> str:
        return self.name


@contextmanager
def jack_server(name: str, period: int = 128, rate: int = 48000, realtime: bool = False):
    """Run ``jackd -d dummy`` as server ``name``; sets JACK_DEFAULT_SERVER while it runs
    and yields a JackServer. ``realtime`` asks for SCHED_FIFO threads (-R), as musicians
    run JACK, and falls back to --no-realtime where the system refuses it.

    Synchronous mode (-S): the server waits for every client each period, so a client
    late by a period delays the cycle instead of losing its events, and jackd logs it.
    Raises RuntimeError if jackd is missing or does not come up."""
    if not shutil.which("jackd"):
        raise RuntimeError("jackd is not installed (make test installs jackd2)")
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    log = tempfile.NamedTemporaryFile("w+b", prefix=f"jackd-{name}-", suffix=".log", delete=False)

    def launch(rt: bool):
        return subprocess.Popen(["jackd", "-R" if rt else "--no-realtime", "-S", "-n", name, "-d", "dummy",
                                 "-r", str(rate), "-p", str(period)], stdout=subprocess.DEVNULL, stderr=log, env=env)
    proc = launch(realtime)
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None and realtime:
                realtime, proc = False, launch(False)  # no realtime rights here
            if proc.poll() is not None:
                raise RuntimeError(f"jackd exited: {Path(log.name).read_text(errors='replace')[-500:]}")
            try:
                probe = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="probe")
                probe.delete()
                break
            except rtmidi.SystemError:
                if time.monotonic() > deadline:
                    # seen once here after JACK clients were killed mid-call: jackd hung at start
                    raise RuntimeError("jackd did not start within 10 s: its log ends "
                                       f"{Path(log.name).read_text(errors='replace')[-300:]!r}. With no JACK server "
                                       "running, a registry left by killed JACK clients can hold it; "
                                       "`ipcrm -S 0x282929; rm -rf /dev/shm/jack*` clears it")
                time.sleep(0.1)
        yield JackServer(name, log.name, realtime)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def close_midi_in(midi_in) -> None:
    """Close and delete an rtmidi MidiIn that may have a callback, without a use-after-free.

    RtMidi's cancelCallback clears the callback, its data and its flag with no lock, while
    JACK's process thread may be reading them to deliver a message: it can call the
    callback with its data already NULL (a segfault in python-rtmidi's wrapper, seen once
    in a fresh clone's make test), or wait for the GIL with a (function, data) tuple that
    python-rtmidi drops. Closed that way, a flooded input crashed or hung its process
    (tests/test_jackrig.py). Here the JACK port goes first, with the callback still set
    (python-rtmidi's MidiBase.close_port), so no later period delivers anything; the GIL is
    let go for 50 ms, so that a period already delivering ends; only then is the callback
    cancelled and the client closed. python-rtmidi's own tuple is held until then.
    Closing twice is a no-op."""
    if midi_in.is_deleted:
        return
    held = gc.get_referents(midi_in)  # python-rtmidi's own callback tuple among them
    rtmidi.MidiIn.__base__.close_port(midi_in)  # MidiIn.close_port would cancel the callback first
    time.sleep(0.05)  # a period still delivering waits for the GIL, and jack_client_close for that period
    midi_in.cancel_callback()
    midi_in.delete()
    del held


def wait_for_port(midi, wanted: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, name in enumerate(midi.get_ports()):
            if wanted in name:
                return i
        time.sleep(0.05)
    raise RuntimeError(f"no port {wanted!r} among {midi.get_ports()}")


class Player:
    """A JACK client that plays into ``riffd in`` and records ``riffd out``.

    ``received``: (monotonic seconds, [status, data...]) in arrival order. The recorder
    takes RtMidi's callback, which runs in JACK's process thread; polling RtMidi's queue
    from another thread instead races with that thread (thestk/rtmidi issue 352).
    """

    def __init__(self, into: str = "riffd in", record: str | None = "riffd out"):
        self.received: list[tuple[float, list[int]]] = []
        self._lock = threading.Lock()
        # short GIL turns, so the callback never waits longer than a JACK period
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="riffd-test-player")
        self.out.open_port(wait_for_port(self.out, into))
        self.inp = None
        if record is not None:  # None: a player that only plays
            self.inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="riffd-test-recorder")
            self.inp.open_port(wait_for_port(self.inp, record))
            self.inp.ignore_types(sysex=True, timing=True, active_sense=True)
            self.inp.set_callback(self._on_message)

    def _on_message(self, message_and_delta, _data=None):
        t = time.monotonic()
        with self._lock:
            self.received.append((t, message_and_delta[0]))

    def send(self, message: list[int]) -> float:
        """Send now; returns the monotonic time of sending."""
        t = time.monotonic()
        self.out.send_message(message)
        return t

    def messages(self) -> list[tuple[float, list[int]]]:
        with self._lock:
            return list(self.received)

    def close(self):
        if self.inp is not None:
            close_midi_in(self.inp)
        self.out.close_port()
        self.out.delete()
        sys.setswitchinterval(self._switch)


def sleep_until(t: float) -> None:
    """Sleep to monotonic time ``t`` (no spinning: the recorder thread needs the GIL)."""
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


def play_chords(player: Player, chords, seconds_per_beat: float, t0: float, channel: int = 0,
                velocity: int = 80) -> list[tuple[float, float, tuple[int, ...]]]:
    """Play (start_beat, end_beat, pitches) block chords from monotonic time ``t0``.
    Returns (sent_time, start_beat, pitches) for each chord struck."""
    struck, sounding = [], ()
    for start, end, pitches in chords:
        sleep_until(t0 + start * seconds_per_beat)
        for p in sounding:
            player.send([0x80 | channel, p, 0])
        t = time.monotonic()
        for p in pitches:
            player.send([0x90 | channel, p, velocity])
        struck.append((t, start, tuple(pitches)))
        sounding = pitches
    if chords:
        sleep_until(t0 + chords[-1][1] * seconds_per_beat)
    for p in sounding:
        player.send([0x80 | channel, p, 0])
    return struck


def play_clocked(player: Player, strikes: dict[int, tuple[int, ...]], ticks: int, seconds_per_tick: float,
                 t0: float, velocity: int = 80) -> tuple[list[tuple[float, tuple[int, ...]]], tuple[int, ...]]:
    """Send MIDI start (0xFA), then ``ticks`` clocks (0xF8) from monotonic time ``t0``; on
    each tick in ``strikes`` release the chord held and strike that one. Returns
    (sent time, pitches) per strike, and the chord still held (the caller releases it)."""
    struck, held = [], ()
    player.send([0xFA])
    for i in range(ticks):
        sleep_until(t0 + i * seconds_per_tick)
        player.send([0xF8])
        if i in strikes:
            for p in held:
                player.send([0x80, p, 0])
            held = tuple(strikes[i])
            t = time.monotonic()
            for p in held:
                player.send([0x90, p, velocity])
            struck.append((t, held))
    return struck, held


def play_timeline(player: Player, timeline: list[tuple[float, list[int]]], t0: float) -> list[float]:
    """Send ``timeline`` ((seconds after ``t0``, message), sorted) at its times; returns
    the monotonic time each message left."""
    sent = []
    for at, message in timeline:
        sleep_until(t0 + at)
        sent.append(player.send(message))
    return sent
