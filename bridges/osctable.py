"""riffd's OSC address table: one list of addresses with their argument types and
bounds, serving the OSC bridge's checks, `riffd osc-help` and the README's table.

``check`` types and bounds the arguments of an incoming message (OscInputError if it
cannot be taken); ``translate`` turns a checked message into riffd's event.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from .events import ALL_NOTES_OFF_CC, Command, Control, NoteOff, NoteOn

MAX_BARS = 64
MAX_CHORD = 16         # pitches in one /riffd/chord
MAX_NAMES = 256        # chord names in one /riffd/generate
MAX_PRIMER = 1024      # notes of one primer (/riffd/primer): 64 bars of sixteenths
MAX_BEAT = MAX_BARS * 16.0  # the latest beat a primer note may reach: 64 bars of 16/4
OSC_CHANNEL = 16       # keys sent over OSC: a channel past MIDI's 0-15, so --in-channel never drops them
PARAMS = ("temperature", "top_p", "density", "density_follow", "register_low", "register_high", "swing",
          "chord_tone_bias", "repeat", "recall_bars", "repeated_note_penalty", "rest_on_changes", "velocity_follow",
          "call_bars", "phrase_bars")


@dataclass(frozen=True)
class Arg:
    """One argument: ``kind`` is "int", "float" (an int is taken too) or "str"; ints and
    floats must lie in ``low``..``high``."""
    name: str
    kind: str
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Address:
    """One OSC address of riffd's table. ``direction`` is "in" (riffd takes it) or "out"
    (riffd sends it); ``repeat`` is an argument that may follow ``args`` ``at_least`` to
    ``at_most`` times."""
    path: str
    direction: str
    args: tuple[Arg, ...]
    help: str
    repeat: Arg | None = None
    at_least: int = 0
    at_most: int = 0

    def signature(self) -> str:
        parts = [f"<{a.kind} {a.name}>" for a in self.args]
        if self.repeat:
            parts.append(f"<{self.repeat.kind} {self.repeat.name}>..." + ("" if self.at_least else " (optional)"))
        return " ".join([self.path, *parts])


PITCH = Arg("pitch", "int", 0, 127)
COMMANDS: tuple[Address, ...] = (
    Address("/riffd/chord", "in", (), "strike a chord by MIDI pitches (1-16); it sounds until the next",
            repeat=PITCH, at_least=1, at_most=MAX_CHORD),
    Address("/riffd/chord/name", "in", (Arg("name", "str"),),
            "strike a chord by name: Am7, F#dim, C/G, G7sus4, Bb13; N.C. lets the chord go"),
    Address("/riffd/note/on", "in", (PITCH, Arg("velocity", "int", 0, 127)), "a key down (velocity 0: up)"),
    Address("/riffd/note/off", "in", (PITCH,), "a key up"),
    Address("/riffd/notes/off", "in", (),
            "every key sent over OSC up, as MIDI's All Notes Off (CC123) on their channel: a patch's stuck key"),
    Address("/riffd/play", "in", (), "start the internal clock at beat 0"),
    Address("/riffd/stop", "in", (), "stop: every riffd note ends"),
    Address("/riffd/continue", "in", (), "start the internal clock where it stopped"),
    Address("/riffd/position", "in", (Arg("beat", "float", 0, 1e6),), "move the internal clock to a beat"),
    Address("/riffd/tempo", "in", (Arg("bpm", "float", 20, 400),),
            "tempo of the internal clock (proposed to the session with --clock link)"),
    Address("/riffd/preset", "in", (Arg("name", "str"),),
            "switch preset: air, blues, chorale, fiddle, folk, folksong, gospel, jazz, pop, strathspey, trance "
            "(and to its model, unless --model or /riffd/model chose one); a meter or call_bars the session set "
            "(serve --meter, --call-bars, /riffd/meter, /riffd/param/call_bars) stays"),
    Address("/riffd/model", "in", (Arg("name", "str"),),
            "switch model: rules, markov, onnx, onnx-int8, mlx, riff-fiddle, riff-folksong, riff-chorale, riff-air, "
            "riff-strathspey or a path"),
    Address("/riffd/mode", "in", (Arg("mode", "str"),), "accompany or call-response"),
    Address("/riffd/call/end", "in", (), "call-response: the call is over, answer at the next bar line "
            "(no wait for silence)"),
    Address("/riffd/meter", "in", (Arg("numerator", "int", 1, 32), Arg("denominator", "int", 1, 16)),
            "the time signature, 3 4 for a waltz: where bars begin, live and in /riffd/generate "
            "(with --clock link, set at start: serve --meter)"),
    *(Address(f"/riffd/param/{name}", "in", (Arg("value", "float"),), f"set the preset's {name}")
      for name in PARAMS),
    Address("/riffd/primer", "in", (PITCH, Arg("velocity", "int", 1, 127), Arg("start_beat", "float", 0, MAX_BEAT),
                                    Arg("duration_beats", "float", 1 / 64, MAX_BEAT)),
            "one note of a melody the next /riffd/generate goes on from (a /riffd/phrase/note's arguments after "
            "its id; beats from the primer's first bar line): the phrase begins at the bar line after the primer, "
            "its chords from the primer's first bar"),
    Address("/riffd/generate", "in", (Arg("bars", "int", 1, MAX_BARS),),
            "a phrase of that many bars over the chords sent since the last generate, or over the names given "
            "(one a bar, or placed by bar lines as a lead sheet writes them; over N.C. the chord before plays on)",
            repeat=Arg("chord", "str"), at_most=MAX_NAMES),
    Address("/riffd/status", "in", (), "ask for /riffd/status/reply"),
    Address("/riffd/panic", "in", (), "all riffd notes off now (note-offs, CC123, CC64 0)"),
    Address("/riffd/note", "out", (PITCH, Arg("velocity", "int", 1, 127), Arg("duration_ms", "int")),
            "a live note as it starts: route it into makenote"),
    Address("/riffd/phrase", "out", (Arg("id", "int"), Arg("count", "int")), "a phrase begins: count notes follow"),
    Address("/riffd/phrase/note", "out", (Arg("id", "int"), PITCH, Arg("velocity", "int", 1, 127),
                                         Arg("start_beat", "float"), Arg("duration_beats", "float")),
            "one note of a phrase (bundled, each datagram under 1,400 bytes)"),
    Address("/riffd/done", "out", (Arg("id", "int"),), "the phrase is complete"),
    Address("/riffd/status/reply", "out", (Arg("model", "str"), Arg("preset", "str"), Arg("tempo", "float"),
                                          Arg("clock", "str"), Arg("notes_sent", "int"),
                                          Arg("deadline_misses", "int")), "the answer to /riffd/status"),
    Address("/riffd/error", "out", (Arg("address", "str"), Arg("reason", "str")),
            "a datagram riffd could not take, and why"),
)
TABLE = {a.path: a for a in COMMANDS if a.direction == "in"}


class OscInputError(ValueError):
    """A message riffd cannot take; ``address`` is its address ("" if unknown)."""

    def __init__(self, address: str, reason: str):
        super().__init__(reason)
        self.address = address


def _coerce(arg: Arg, value):
    if arg.kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{arg.name} must be a string, got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{arg.name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):  # int(inf) raises OverflowError, not ValueError
        raise ValueError(f"{arg.name} must be finite")
    if arg.kind == "int":
        if value != int(value):
            raise ValueError(f"{arg.name} must be a whole number, got {value}")
        value = int(value)
    else:
        value = float(value)
    if (arg.low is not None and value < arg.low) or (arg.high is not None and value > arg.high):
        raise ValueError(f"{arg.name} {value} is outside {arg.low:g}..{arg.high:g}")
    return value


def check(path: str, params: Iterable) -> tuple:
    """The arguments of an incoming message, typed by the table; raises OscInputError
    for an unknown address, a wrong count or type, or a value out of bounds."""
    spec = TABLE.get(path)
    if spec is None:
        raise OscInputError(path, "unknown address (see riffd osc-help)")
    params = list(params)
    fixed = len(spec.args)
    count_ok = len(params) == fixed if spec.repeat is None else \
        fixed + spec.at_least <= len(params) <= fixed + spec.at_most
    if not count_ok:
        most = "" if spec.repeat is None else f"; {spec.repeat.name} arguments: {spec.at_least} to {spec.at_most}"
        raise OscInputError(path, f"expected {spec.signature()}, got {len(params)} argument(s){most}")
    try:
        out = [_coerce(a, v) for a, v in zip(spec.args, params)]
        out += [_coerce(spec.repeat, v) for v in params[fixed:]]
    except ValueError as exc:
        raise OscInputError(path, str(exc)) from None
    return tuple(out)


def translate(path: str, args: tuple, t: float, source=None):
    """The event for a checked message: NoteOn/NoteOff for keys (Control CC123 for every
    key), else a Command whose name is the address after /riffd/ ("param/swing",
    "chord/name", ...)."""
    if path == "/riffd/note/on":
        return NoteOn(t, OSC_CHANNEL, args[0], args[1]) if args[1] else NoteOff(t, OSC_CHANNEL, args[0])
    if path == "/riffd/note/off":
        return NoteOff(t, OSC_CHANNEL, args[0])
    if path == "/riffd/notes/off":
        return Control(t, OSC_CHANNEL, ALL_NOTES_OFF_CC, 0)
    return Command(t, path[len("/riffd/"):], args, source)


def help_table(markdown: bool = False) -> str:
    """The command table as text (``riffd osc-help``) or as the README's Markdown table."""
    if not markdown:
        lines = []
        for direction, title in (("in", "riffd takes"), ("out", "riffd sends")):
            lines.append(f"{title}:")
            lines += [f"  {a.signature()}\n      {a.help}" for a in COMMANDS if a.direction == direction]
        return "\n".join(lines)
    rows = ["| address | arguments | direction | what it does |", "| --- | --- | --- | --- |"]
    for a in COMMANDS:
        sig = a.signature()[len(a.path):].strip().replace("|", "\\|")
        rows.append(f"| `{a.path}` | {('`' + sig + '`') if sig else ''} | {a.direction} | {a.help} |")
    return "\n".join(rows)
