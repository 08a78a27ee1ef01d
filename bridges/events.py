"""Immutable events that bridges put on the daemon's queue.

Every event carries ``t``: the ``time.monotonic()`` second at which the bridge received
it. Bridges only build these and enqueue them; the daemon decides what they mean. A
``channel`` is MIDI's 0-15, or 16 for keys sent over OSC (osctable.OSC_CHANNEL).
"""
from __future__ import annotations

from dataclasses import dataclass

ALL_NOTES_OFF_CC = 123  # MIDI 1.0 Detailed Specification, "Channel Mode Messages"
DRUM_CHANNEL = 9  # MIDI channel 10, General MIDI's percussion: drums are never chords
SUSTAIN_CC = 64
RESET_CONTROLLERS_CC = 121  # the pedal goes up (MMA RP-015, "Response to Reset All Controllers")
PEDAL_CCS = (SUSTAIN_CC, RESET_CONTROLLERS_CC)


def pedal_down(control: int, value: int) -> bool:
    """After a control change of ``PEDAL_CCS``: whether the sustain pedal is down (CC64
    at 64 or more; below 64, or CC121, lets it up)."""
    return control == SUSTAIN_CC and value >= 64


@dataclass(frozen=True, slots=True)
class NoteOn:
    """A key pressed. ``pitch`` 0-127 (MIDI note number), ``velocity`` 1-127."""
    t: float
    channel: int
    pitch: int
    velocity: int


@dataclass(frozen=True, slots=True)
class NoteOff:
    """A key released (also a note-on with velocity 0)."""
    t: float
    channel: int
    pitch: int


@dataclass(frozen=True, slots=True)
class Control:
    """A control change: ``control`` number and ``value``, both 0-127 (CC64 is sustain)."""
    t: float
    channel: int
    control: int
    value: int


@dataclass(frozen=True, slots=True)
class ClockTick:
    """MIDI timing clock 0xF8: 24 per quarter note (24 PPQN)."""
    t: float


@dataclass(frozen=True, slots=True)
class Transport:
    """MIDI real-time start 0xFA, continue 0xFB or stop 0xFC: ``kind`` is that word."""
    t: float
    kind: str


@dataclass(frozen=True, slots=True)
class SongPosition:
    """Song position pointer 0xF2, in MIDI beats: sixteenth notes since the song start."""
    t: float
    sixteenths: int


@dataclass(frozen=True, slots=True)
class Command:
    """A request from a control surface (OSC): ``name`` such as "panic" or "param/swing",
    ``args`` a tuple, ``source`` the (host, port) to answer, or None."""
    t: float
    name: str
    args: tuple = ()
    source: tuple | None = None


Event = NoteOn | NoteOff | Control | ClockTick | Transport | SongPosition | Command


def from_midi_bytes(message: list[int] | tuple[int, ...], t: float) -> Event | None:
    """Translate one raw MIDI message into an event, or None for the ones riffd ignores.

    ``message``: status byte then data bytes, as python-rtmidi delivers them.
    Raises nothing: a malformed message (wrong length, no status byte, a data byte above
    127) is ignored, returning None.
    """
    if not message or message[0] < 0x80 or any(b > 127 for b in message[1:3]):
        return None
    status = message[0]
    kind, channel = status & 0xF0, status & 0x0F
    if status == 0xF8:
        return ClockTick(t)
    if status in (0xFA, 0xFB, 0xFC):
        return Transport(t, {0xFA: "start", 0xFB: "continue", 0xFC: "stop"}[status])
    if status == 0xF2 and len(message) >= 3:
        return SongPosition(t, (message[2] << 7) | message[1])
    if len(message) < 3 or status >= 0xF0:
        return None
    if kind == 0x90 and message[2] > 0:
        return NoteOn(t, channel, message[1], message[2])
    if kind == 0x80 or kind == 0x90:
        return NoteOff(t, channel, message[1])
    if kind == 0xB0:
        return Control(t, channel, message[1], message[2])
    return None
