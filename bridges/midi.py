"""MIDI ports through python-rtmidi: virtual ports or existing ones by name.

The input callback runs on RtMidi's own thread; it only stamps ``time.monotonic()``,
builds an immutable event and enqueues it (STYLE.md 1).
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time

import rtmidi

from .events import from_midi_bytes

APIS = {
    "auto": rtmidi.API_UNSPECIFIED,
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
DEFAULT_IN, DEFAULT_OUT = "riffd in", "riffd out"


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


def _client(cls, api: int, client_name: str):
    try:
        return cls(api, name=client_name)
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


class MidiInput:
    """Receives MIDI into ``events`` (a queue.Queue of riffd.bridges.events values)."""

    def __init__(self, events: queue.Queue, api_name: str = "auto", port: str | None = None,
                 client_name: str = "riffd-in"):
        self._events = events
        self._midi = _client(rtmidi.MidiIn, resolve_api(api_name), client_name)
        self.port_name = _open(self._midi, resolve_api(api_name), port, DEFAULT_IN, "input")
        self._midi.ignore_types(sysex=True, timing=False, active_sense=True)
        self._midi.set_callback(self._callback)

    def _callback(self, message_and_delta, _data=None) -> None:
        event = from_midi_bytes(message_and_delta[0], time.monotonic())
        if event is not None:
            self._events.put(event)

    def close(self) -> None:
        self._midi.cancel_callback()
        self._midi.close_port()
        self._midi.delete()


class MidiOutput:
    """Sends raw MIDI messages; ``send`` may be called from any thread."""

    def __init__(self, api_name: str = "auto", port: str | None = None, client_name: str = "riffd-out"):
        self._midi = _client(rtmidi.MidiOut, resolve_api(api_name), client_name)
        self.port_name = _open(self._midi, resolve_api(api_name), port, DEFAULT_OUT, "output")
        self._lock = threading.Lock()

    def send(self, message: list[int]) -> None:
        with self._lock:
            self._midi.send_message(message)

    def close(self) -> None:
        with self._lock:
            time.sleep(0.05)  # let the driver's buffer (a JACK period or two) drain first
            self._midi.close_port()
            self._midi.delete()
