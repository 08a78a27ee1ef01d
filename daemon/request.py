"""A render request in JSON: chords by name and how to play them, as a lead sheet gives
them rather than as a MIDI file, e.g. ``{"chords": "Am F | C G7 | %", "bars": 8,
"tempo": 140, "meter": "3/4", "preset": "trance", "seed": 3}``.

`riffd render REQUEST.json` and the watched folder (daemon/watch.py) read a request
alike: ``read_request`` checks its keys, and ``played`` gives what it plays with
(``request_preset``, ``request_seed``) and the chord track it is played over
(``request_song``).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

MAX_BARS = 256
# A request's chords are voiced from a bass in C2-B2 (MIDI 36-47), the chord in the octave
# above it (Chord.voicing), as chord packs and a pianist's left hand voice them: under the
# melody (the presets' registers begin at G3 to E4), not across it as from C3 (measured.md,
# "A request's chords under the melody").
VOICING_LOW = 36
KEYS = ("bars", "chords", "meter", "preset", "seed", "tempo")


class RequestError(ValueError):
    """A request that cannot be played; the message names the key and what it takes."""


def read_request(path: str | Path) -> dict:
    """The JSON object of the request file ``path``. Raises RequestError for a file that
    cannot be read, text that is not JSON, JSON that is not an object, and keys outside KEYS."""
    try:
        request = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"not valid JSON: {exc}") from None
    except OSError as exc:
        raise RequestError(f"cannot be read ({exc.strerror or exc})") from None
    unknown = sorted(set(request) - set(KEYS)) if isinstance(request, dict) else []
    if not isinstance(request, dict) or unknown:
        raise RequestError(f"a request is a JSON object with keys {', '.join(KEYS)}"
                           + (f" (unknown: {', '.join(map(repr, unknown))})" if unknown else ""))
    return request


def played(request: dict, preset: str, seed: int | None):
    """(Preset, seed, Song, chords) a request plays, ``preset`` (a name or a file) and
    ``seed`` for what it leaves out: ``request_preset``, ``request_seed`` and
    ``request_song`` in turn. Raises RequestError or PresetError."""
    the_preset = request_preset(request, preset)
    return (the_preset, request_seed(request, seed), *request_song(request, the_preset))


def request_preset(request: dict, default: str):
    """The Preset a request plays: its "preset" (a name or a file), else ``default``,
    with its "tempo" (BPM) and "meter". Raises PresetError (riffd.presets) for a preset
    or value no preset takes, RequestError for a meter that is no time signature."""
    from riffd.presets import load_preset
    name = request.get("preset", default)
    if not isinstance(name, str) or not name.strip():
        raise RequestError("'preset' must be a preset's name (\"folk\") or a preset file's path")
    preset = load_preset(name)
    if "tempo" in request:
        preset = preset.with_values(tempo=request["tempo"])
    if "meter" in request:
        preset = preset.with_values(meter=request_meter(request["meter"]))
    return preset


def request_seed(request: dict, default: int | None) -> int | None:
    """A request's "seed" (0 to 2**63 - 1), else ``default``. Raises RequestError."""
    seed = request.get("seed", default)
    if not (seed is None or isinstance(seed, int) and 0 <= seed < 2**63) or isinstance(seed, bool):
        raise RequestError("'seed' must be a whole number from 0")
    return seed


def request_meter(value) -> list[int]:
    """A request's "meter", "3/4" or [3, 4], as [beats, note value]. Raises RequestError;
    one no preset plays (3/5) raises PresetError from the preset."""
    if isinstance(value, str) and value.count("/") == 1 and all(x.strip().isdigit() for x in value.split("/")):
        value = [int(x) for x in value.split("/")]
    if not (isinstance(value, list) and len(value) == 2 and all(type(x) is int for x in value)):
        raise RequestError("'meter' must be a time signature such as \"3/4\" or [3, 4]")
    return value


def request_song(request: dict, preset):
    """The Song of a request's chords (``phrases.progression``: one bar each, or as bar
    lines place them; repeated to fill "bars"; N.C. silent; voiced from ``VOICING_LOW``)
    at ``preset``'s tempo and meter, and those chords as ChordAt (their names as written: Cadd9 stays Cadd9; over
    N.C. the melody plays on over the chord before, as over a lead sheet's break).
    Raises RequestError for chords or bars that are not a progression."""
    import mido

    from riffd.bridges.midifile import read_song
    from riffd.bridges.midiwrite import melody_track, write_atomic
    from riffd.models.protocol import MelodyNote
    from riffd.music.theory import felt_beat

    from .phrases import model_chords, progression
    chords, bars = request.get("chords"), request.get("bars", 8)
    if isinstance(chords, str):  # a lead sheet's line: "Am F | C G7"
        chords = [chords]
    if not isinstance(chords, list) or not chords or not all(isinstance(c, str) and c.strip() for c in chords):
        raise RequestError("'chords' must be chord names such as [\"Am\", \"F\"] or \"Am F | C G7\"")
    if not isinstance(bars, int) or isinstance(bars, bool) or not 1 <= bars <= MAX_BARS:
        raise RequestError(f"'bars' must be a whole number from 1 to {MAX_BARS}")
    try:
        timeline = progression(chords, bars, preset.beats_per_bar, felt_beat(preset.meter))
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    end = bars * preset.beats_per_bar
    ends = [b for b, _ in timeline[1:]] + [end]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(preset.tempo), time=0),
        mido.MetaMessage("time_signature", numerator=preset.meter[0], denominator=preset.meter[1], time=0)]))
    block = [MelodyNote(b, e - b, p, 70) for (b, c), e in zip(timeline, ends)
             for p in (c.voicing(VOICING_LOW) if c else ())]
    midi.tracks.append(melody_track(block, 480, 0, name="chords"))
    with tempfile.TemporaryDirectory(prefix="riffd-request-") as folder:
        path = Path(folder) / "chords.mid"  # read back as any chord file is, so both play alike
        write_atomic(midi, path)
        return read_song(path), model_chords(timeline)
