"""MIDI ports through python-rtmidi: virtual ports or existing ones by name.

Input uses no callback: a callback runs inside the driver's thread (JACK's process
thread), where it must take the GIL, and a late GIL makes JACK cycles late and loses
events. RtMidi's own queue is read instead, from a reader thread that polls every
millisecond, and each event is stamped from RtMidi's delta times, so an event read late
keeps the time it arrived (RtMidi's queue is single-producer, single-consumer: only
the reader thread reads it).
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time

import rtmidi

from .events import from_midi_bytes
from .realtime import make_realtime

APIS = {
    "auto": rtmidi.API_UNSPECIFIED,
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
DEFAULT_IN, DEFAULT_OUT = "riffd in", "riffd out"
POLL_S = 0.001  # how often the reader looks at RtMidi's queue
QUEUE_SIZE = 4096  # RtMidi's input queue, in messages (a second of dense MIDI)
log = logging.getLogger("riffd.bridges")


class PortError(RuntimeError):
    """A MIDI port or API that cannot be opened; the message says what exists and what to do."""


def resolve_api(name: str) -> int:
    """rtmidi API constant for ``name`` (a key of APIS). Raises PortError if this
    python-rtmidi build lacks it."""
    if name not in APIS:
        raise PortError(f"unknown MIDI API {name!r} (choose from {', '.join(APIS)})")
    api = APIS[name]
    if api != rtmidi.API_UNSPECIFIED and api not in rtmidi.get_compiled_api():
        have = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api())
        raise PortError(f"MIDI API {name!r} is not available in this python-rtmidi build "
                        f"(available: {have})")
    # Never let libjack spawn a server of its own behind the user's back.
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    return api


def _client(cls, api: int, client_name: str, **kw):
    try:
        return cls(api, name=client_name, **kw)
    except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError) as exc:
        hint = ""
        if api == rtmidi.API_UNIX_JACK:
            hint = " Is a JACK server running? Start one (e.g. `jackd -d dummy`) or use --midi-api alsa."
        elif api == rtmidi.API_LINUX_ALSA:
            hint = " Is the ALSA sequencer there (/dev/snd/seq)? Or use --midi-api jack."
        raise PortError(f"cannot open a MIDI client with {rtmidi.get_api_name(api) if api else 'the default API'}: "
                        f"{exc}.{hint}") from None


def list_ports(api_name: str = "auto") -> tuple[list[str], list[str]]:
    """(input port names, output port names) seen through ``api_name``."""
    api = resolve_api(api_name)
    midi_in, midi_out = _client(rtmidi.MidiIn, api, "riffd-ports"), _client(rtmidi.MidiOut, api, "riffd-ports")
    try:
        return midi_in.get_ports(), midi_out.get_ports()
    finally:
        midi_in.delete()
        midi_out.delete()


def _find_port(ports: list[str], wanted: str, direction: str, api_label: str) -> int:
    exact = [i for i, p in enumerate(ports) if p == wanted]
    matches = exact or [i for i, p in enumerate(ports) if wanted.lower() in p.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(repr(p) for p in ports) or "none"
    if matches:
        raise PortError(f"MIDI {direction} port {wanted!r} is ambiguous; it matches "
                        f"{', '.join(repr(ports[i]) for i in matches)}. Give more of the name.")
    advice = ("On Windows, create a port with loopMIDI first; " if sys.platform == "win32" else "")
    raise PortError(f"no MIDI {direction} port matches {wanted!r} ({api_label} {direction}s: {listing}). "
                    f"{advice}Name an existing port, or leave out --{'in' if direction == 'input' else 'out'} "
                    f"for a virtual port '{DEFAULT_IN if direction == 'input' else DEFAULT_OUT}'.")


def _open(port, api: int, name: str | None, default: str, direction: str) -> str:
    label = rtmidi.get_api_display_name(port.get_current_api())
    if name is None:
        try:
            port.open_virtual_port(default)
        except (NotImplementedError, rtmidi.RtMidiError) as exc:
            raise PortError(f"{label} cannot make a virtual {direction} port ({exc}). "
                            "On Windows, create a port with loopMIDI and pass "
                            f"--{'in' if direction == 'input' else 'out'} NAME.") from None
        return default
    index = _find_port(port.get_ports(), name, direction, label)
    try:
        port.open_port(index)
    except (rtmidi.RtMidiError, rtmidi.SystemError) as exc:
        raise PortError(f"cannot open MIDI {direction} port {port.get_ports()[index]!r}: {exc}") from None
    return port.get_ports()[index]


class Stamper:
    """Turns RtMidi's delta times (seconds since the previous message) into
    ``time.monotonic()`` seconds of arrival.

    The offset between RtMidi's running time and the monotonic clock is the smallest
    ``read_t - running`` seen: a message can only be read after it arrived, so the
    smallest gap is the one read without delay. Stamps are then as exact as RtMidi's
    own (a JACK period), however late the reader runs.
    """

    def __init__(self):
        self.running = 0.0
        self.offset: float | None = None

    def stamp(self, delta: float, read_t: float) -> float:
        """Arrival time (s) of a message with RtMidi ``delta`` (s) read at ``read_t`` (s)."""
        self.running += max(0.0, delta)
        gap = read_t - self.running
        if self.offset is None or gap < self.offset:
            self.offset = gap
        return self.running + self.offset


class Lateness:
    """A histogram of how late the reader's polls woke, in 0.25 ms bins up to 50 ms:
    constant memory however long the daemon runs."""
    BIN_MS, BINS = 0.25, 200

    def __init__(self):
        self.counts = [0] * (self.BINS + 1)
        self.max_ms = 0.0

    def add(self, seconds: float) -> None:
        ms = seconds * 1000.0
        self.counts[min(self.BINS, int(ms / self.BIN_MS))] += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        """Upper edge (ms) of the bin holding the ``q``-th percentile (0-100)."""
        total, seen = sum(self.counts), 0
        for i, n in enumerate(self.counts):
            seen += n
            if total and seen >= q / 100.0 * total:
                return (i + 1) * self.BIN_MS if i < self.BINS else self.max_ms
        return 0.0


def jack_server_stamp() -> int | None:
    """An identity of the running JACK server, or None (no server, or not jack2 on Linux).

    jack2 keeps its engine in the shared-memory segment /dev/shm/jack_<server>_<uid>_0;
    a restarted server makes a new one, so its inode changes. A client of the old server
    cannot tell: libjack keeps answering from the stale segment.
    """
    name = os.environ.get("JACK_DEFAULT_SERVER", "default")
    try:
        return os.stat(f"/dev/shm/jack_{name}_{os.getuid()}_0").st_ino
    except (OSError, AttributeError):
        return None


class _Port:
    """What an input and an output share: the RtMidi object, the name asked for, and
    reopening after the port or the whole MIDI server went away."""

    cls, default, direction = None, "", ""

    def __init__(self, api_name: str, port: str | None, client_name: str, **kw):
        self._api, self._wanted, self._client_name, self._kw = resolve_api(api_name), port, client_name, kw
        self._midi = _client(self.cls, self._api, client_name, **kw)
        self.port_name = _open(self._midi, self._api, port, self.default, self.direction)
        self.virtual = port is None  # a port of riffd's own, not one found by name
        self._server = jack_server_stamp() if self._api == rtmidi.API_UNIX_JACK else None
        self._seen = self._server  # the server stamp a reconnect last saw
        self._abandoned: list = []

    def server_gone(self) -> bool:
        """Whether the JACK server this port lives on stopped or restarted (False for
        other APIs, which survive their server or have none)."""
        return self._server is not None and jack_server_stamp() != self._server

    def sees(self, name: str) -> bool:
        """Whether this client lists a port of the other direction whose name contains
        ``name``. False when the server is gone or restarted (a dead client lists none)."""
        try:
            return any(name in p for p in self._midi.get_ports())
        except (rtmidi.RtMidiError, rtmidi.SystemError):
            return False

    def _reopen(self, fresh_client: bool) -> None:
        """Open the port again by the name first asked for. ``fresh_client``: the MIDI
        server restarted, so the old client is left as it is (deleting a client of a dead
        JACK server crashes libjack) and a new one is made. Raises PortError."""
        if fresh_client:
            before = jack_server_stamp() if self._server is not None else None
            if self._server is not None and before is None:
                raise PortError("the JACK server is not running")
            if self._server is not None and before != self._seen:
                # a server first seen now may still be starting: a client made then was
                # left dead now and then (the restart test, 1 run in 3 on a loaded box)
                self._seen = before
                raise PortError("a JACK server has just appeared; reconnecting at the next check")
            self._abandoned.append(self._midi)
            self._midi = _client(self.cls, self._api, self._client_name, **self._kw)
            if self._server is not None:
                # a server that stopped or restarted while the client was made leaves it dead too
                if jack_server_stamp() != before:
                    raise PortError("the JACK server restarted while riffd reconnected")
                self._server = before
        else:
            if self._wanted is not None:  # the port must be back before ours is closed
                label = rtmidi.get_api_display_name(self._midi.get_current_api())
                _find_port(self._midi.get_ports(), self._wanted, self.direction, label)
            try:
                self._midi.close_port()
            except (rtmidi.RtMidiError, rtmidi.SystemError):
                pass
        self.port_name = _open(self._midi, self._api, self._wanted, self.default, self.direction)


class MidiInput(_Port):
    """Receives MIDI into ``events`` (a queue.Queue of riffd.bridges.events values).

    A reader thread polls RtMidi's queue every ``POLL_S`` (at SCHED_FIFO ``rt_priority``
    where granted: ``realtime``); ``lateness`` (a Lateness)
    keeps how late each poll woke, which measures how long other threads held the GIL.
    ``received`` counts the raw messages read. Raises PortError if the port cannot open.
    """

    cls, default, direction = rtmidi.MidiIn, DEFAULT_IN, "input"

    def __init__(self, events: queue.Queue, api_name: str = "auto", port: str | None = None,
                 client_name: str = "riffd-in", rt_priority: int = 0):
        super().__init__(api_name, port, client_name, queue_size_limit=QUEUE_SIZE)
        self._events = events
        self.rt_priority, self.realtime = rt_priority, False  # SCHED_FIFO for the reader (bridges/realtime.py)
        self.received = 0
        self.lateness = Lateness()
        # one reader of RtMidi's queue at a time: the reader thread, or read_now's caller
        self._lock = threading.Lock()
        self._start_reader()

    def _start_reader(self) -> None:
        self._midi.ignore_types(sysex=True, timing=False, active_sense=True)
        with self._lock:
            self._stamper, self._stop = Stamper(), threading.Event()
        self._thread = threading.Thread(target=self._read, name="riffd-midi-in", daemon=True)
        self._thread.start()

    def _drain(self, now: float) -> int:
        """Move what waits in RtMidi's queue into ``events`` (lock held); returns how many.
        ``_midi`` changes only in reopen, between _stop_reader and _start_reader."""
        n = 0
        while (item := self._midi.get_message()) is not None:
            message, delta = item
            n += 1
            event = from_midi_bytes(message, self._stamper.stamp(delta, now))
            if event is not None:
                self._events.put(event)
        self.received += n
        return n

    def read_now(self) -> int:
        """Read RtMidi's queue now, from any thread, without waiting for the next poll
        (up to ``POLL_S``): the sending thread calls it before a note-on that a key just
        struck may replace. Returns how many messages it read (0 while the reader is
        stopped for a reconnect)."""
        with self._lock:
            return 0 if self._stop.is_set() else self._drain(time.monotonic())

    def _read(self) -> None:
        self.realtime = make_realtime(self.rt_priority)
        due = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self.lateness.add(max(0.0, now - due))
            with self._lock:
                self._drain(now)
            due = time.monotonic() + POLL_S
            self._stop.wait(POLL_S)

    def _stop_reader(self) -> None:
        with self._lock:  # no read_now runs on a port about to close
            self._stop.set()
        self._thread.join()

    def reopen(self, fresh_client: bool = False) -> None:
        """Open the input again by name (see _Port); the reader restarts on it."""
        self._stop_reader()
        try:
            self._reopen(fresh_client)
        finally:
            self._start_reader()

    def close(self) -> None:
        self._stop_reader()
        self._midi.close_port()
        self._midi.delete()


class MidiOutput(_Port):
    """Sends raw MIDI messages; ``send`` may be called from any thread.
    Raises PortError if the port cannot open."""

    cls, default, direction = rtmidi.MidiOut, DEFAULT_OUT, "output"

    def __init__(self, api_name: str = "auto", port: str | None = None, client_name: str = "riffd-out"):
        super().__init__(api_name, port, client_name)
        self._lock = threading.Lock()
        self.suspended = False  # the port is gone: messages are dropped, not queued
        self.dropped = 0

    def send(self, message: list[int]) -> None:
        with self._lock:
            if self.suspended:
                self.dropped += 1
                return
            self._midi.send_message(message)

    def suspend(self) -> None:
        """Drop messages until ``reopen`` succeeds: with its port or its server gone,
        RtMidi's JACK output waits for room in a buffer no one drains, forever."""
        with self._lock:
            self.suspended = True

    def reopen(self, fresh_client: bool = False) -> None:
        """Open the output again by name (see _Port); sending resumes."""
        with self._lock:
            self._reopen(fresh_client)
            self.suspended = False

    def close(self) -> None:
        with self._lock:
            time.sleep(0.05)  # let the driver's buffer (a JACK period or two) drain first
            self._midi.close_port()
            self._midi.delete()
