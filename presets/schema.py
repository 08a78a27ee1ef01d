"""Presets: TOML files of musical settings, validated against one spec table.

SPEC is the one table of keys, types, ranges, defaults and meanings: the Preset dataclass,
the validation and the README's preset table (``markdown_table``) are all made from it.
A preset file holds any subset of its keys; missing keys take the default.
A bad file raises PresetError naming the file and the key, and loses nothing else.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import field, fields, make_dataclass, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType

SCALES = ("major", "minor", "dorian", "mixolydian", "blues", "pentatonic", "harmonic_minor")
MODES = ("accompany", "call-response")
ENDINGS = ("root", "chord", "model")  # models/ending.py
TIMBRES = ("sine", "saw", "square", "organ", "epiano")  # cython_ext/synth.py's oscillators
# [synth.<role>] key -> (type, low, high, help); the roles are the WAV preview's two parts.
SYNTH_SPEC: dict[str, tuple] = {
    "timbre": (str, TIMBRES, None, "oscillator"),
    "attack_ms": (float, 0.1, 5000.0, "attack time (ms)"),
    "decay_ms": (float, 0.1, 10000.0, "decay time (ms)"),
    "sustain": (float, 0.0, 1.0, "sustain level (share of the peak)"),
    "release_ms": (float, 0.1, 10000.0, "release time after the note-off (ms)"),
    "cutoff_hz": (float, 20.0, 24000.0, "low-pass cutoff (Hz; at 0.45 x the sample rate or above: none)"),
    "resonance": (float, 0.5, 12.0, "low-pass Q"),
    "pan": (float, -1.0, 1.0, "stereo position, -1 left to 1 right"),
    "gain": (float, 0.0, 2.0, "level (linear)"),
}
SYNTH_DEFAULTS = {
    "melody": {"timbre": "saw", "attack_ms": 4.0, "decay_ms": 250.0, "sustain": 0.6, "release_ms": 120.0,
               "cutoff_hz": 3200.0, "resonance": 1.4, "pan": 0.25, "gain": 0.5},
    "chords": {"timbre": "epiano", "attack_ms": 3.0, "decay_ms": 900.0, "sustain": 0.45, "release_ms": 300.0,
               "cutoff_hz": 24000.0, "resonance": 0.707, "pan": -0.25, "gain": 0.3},
}


def _frozen_synth(tables: dict) -> MappingProxyType:
    return MappingProxyType({role: MappingProxyType(dict(values)) for role, values in tables.items()})


class PresetError(ValueError):
    """A preset that cannot be used; the message names the file and the key."""


# key -> (type, low, high, default, help). Numbers are checked against low..high.
SPEC: dict[str, tuple] = {
    "name": (str, None, None, "default", "preset name"),
    "tempo": (float, 20.0, 400.0, 110.0, "beats per minute when riffd keeps the clock"),
    "meter": (list, None, None, [4, 4], "time signature [numerator, denominator]"),
    "swing": (float, 0.0, 0.75, 0.0, "delay of off-beat grid notes, as a share of a grid step"),
    "scale": (str, SCALES, None, "major", "scale the rules model prefers for passing tones (the transformer "
                                            "and markov play the ones they learned)"),
    "register": (list, None, None, [60, 84], "lowest and highest melody pitch (MIDI)"),
    "density": (float, 0.5, 32.0, 6.0, "melody notes per bar, on average (the rules model's; the transformer "
                                       "and markov keep it as far as density_follow says)"),
    "density_follow": (float, 0.0, 1.0, 0.0, "how firmly the transformer and markov keep density: 0 play their own "
                                             "rhythm (closest to real melodies), 1 tilts it while their notes per "
                                             "bar over the last 4 bars stray over 25 % from density (a chord "
                                             "change still gets its note unless rest_on_changes)"),
    "grid": (int, 1, 12, 2, "rhythm grid steps per beat, a divisor of 12 (2 = eighths, 3 = triplets, "
                            "4 = sixteenths, 12 = every REMI position: the transformer's own rhythm); "
                            "markov's onsets keep the sixteenths it learned"),
    "temperature": (float, 0.05, 3.0, 1.0, "sampling temperature"),
    "top_p": (float, 0.05, 1.0, 0.95, "nucleus sampling mass"),
    "chord_tone_bias": (float, -1.0, 1.0, 0.85, "rules and markov: chance that a strong-beat note is a chord tone "
                                                "(below 0: as 0); the transformer: +3 nats times it on chord tones' "
                                                "logits on beats and chord changes (0: the odds it learned; below 0: "
                                                "fewer chord tones there)"),
    "repeat": (float, 0.0, 1.0, 0.0, "chance that a returning progression brings back the melody played over it"),
    "recall_bars": (int, 2, 32, 4, "the recall's phrase in bars, whole 2-bar spans from bar 1: a melody brought "
                                   "back goes on to the phrase's end on one draw, its last beat the model's own "
                                   "(4: a song's phrase; 8: a reel's or an air's section)"),
    "rest_on_changes": (float, 0.0, 1.0, 0.0, "how far the transformer may leave a chord change without a note "
                                              "on it: 0 answers every change, 1 leaves it to the model's odds "
                                              "(in batch a note it chose to hold holds)"),
    "repeated_note_penalty": (float, 0.0, 5.0, 0.0, "nats off the transformer's logit for repeating the "
                                                     "previous note's pitch: above 0 repeats notes less often"),
    "ending": (str, ENDINGS, None, "root", "how a melody whose end is known (render, eval, /riffd/generate, a call-response answer, live once the player lets go) ends: "
                                         "root lands on the final chord's root and holds it to the end, chord on "
                                         "its nearest chord tone, model stops where the model's notes are cut"),
    "ending_beats": (float, 0.25, 16.0, 1.0, "the ending's last note sounds at least this many beats (dotted "
                                             "quarters in 6/8, 9/8, 12/8) where the final chord lasts so long: the "
                                             "last note of the final bar that can lands (1: a tune's last note; 4 "
                                             "in 4/4: a final bar's whole note)"),
    "phrase_bars": (int, 1, 64, 2, "length of an answer phrase in call-response mode (bars)"),
    "response_wait_beats": (float, 0.5, 16.0, 2.0, "silence before an answer (beats)"),
    "call_bars": (int, 0, 64, 0, "call-response: a call lasts this many bars and is answered on the next downbeat, "
                                 "let go or not (4: trading fours); 0: it ends after response_wait_beats of "
                                 "silence"),
    "strike_tolerance_beats": (float, 0.0, 0.5, 0.25, "a chord this early counts on the next beat"),
    "strike_window_ms": (float, 5.0, 200.0, 30.0, "keys this close to a strike's first key are one chord (ms); "
                                                   "short of three pitch classes, keys this close to the one "
                                                   "before, up to three windows (a strum, a roll)"),
    "mode": (str, MODES, None, "accompany", "accompany or call-response"),
    "model": (str, None, None, "onnx", "melody model: rules, markov, mlx, onnx, onnx-int8, a shipped checkpoint "
                                         "(riff-fiddle, riff-folksong, riff-chorale, riff-air, riff-strathspey) or a "
                                         "path (in a preset file, one that starts with ./ or ../ is relative to the "
                                         "file's folder)"),
    "style": (str, None, None, "pop", "style token given to the model"),
    "velocity": (int, 1, 127, 90, "base note-on velocity"),
    "velocity_follow": (float, 0.0, 1.0, 1.0, "how far the melody's loudness follows the player's: its velocity "
                                              "moves by this share of the last chord's mean velocity minus 80 (mf); "
                                              "0 keeps velocity whatever the player does"),
    "channel": (int, 1, 16, 2, "MIDI channel of the melody (1-16)"),
    "synth": (dict, None, None, _frozen_synth(SYNTH_DEFAULTS),
              "the WAV preview's patches: tables [synth.melody] and [synth.chords] (keys below)"),
}


def _default(key):
    value = SPEC[key][3]
    return tuple(value) if isinstance(value, list) else value


def _validate_synth(value, where: str) -> MappingProxyType:
    """A [synth] table: sub-tables per role, each key checked against SYNTH_SPEC; keys
    not given keep their defaults."""
    if not isinstance(value, dict):
        raise PresetError(f"{where}: key 'synth': expected a table with [synth.melody] and [synth.chords]")
    tables = {role: dict(defaults) for role, defaults in SYNTH_DEFAULTS.items()}
    for role, values in value.items():
        if role not in tables or not isinstance(values, dict):
            raise PresetError(f"{where}: key 'synth.{role}': expected a table named melody or chords")
        for key, v in values.items():
            if key not in SYNTH_SPEC:
                raise PresetError(f"{where}: unknown key 'synth.{role}.{key}' (known: {', '.join(SYNTH_SPEC)})")
            kind, low, high, _ = SYNTH_SPEC[key]
            if kind is str:
                if v not in low:
                    raise PresetError(f"{where}: key 'synth.{role}.{key}': bad value {v!r} (one of {', '.join(low)})")
                tables[role][key] = v
            else:
                tables[role][key] = _check_number(f"synth.{role}.{key}", v, kind, low, high, where)
    return _frozen_synth(tables)


def _beats_per_bar(self) -> float:
    """Quarter-note beats per bar: numerator * 4 / denominator."""
    return self.meter[0] * 4.0 / self.meter[1]


def _with_values(self, **values):
    """A copy with ``values`` validated as if they came from a file (PresetError if bad,
    naming the preset: "pop preset: key 'tempo': ...")."""
    return replace(self, **_validate(dict(values), f"{self.name} preset"))


def _plain(table) -> dict:
    return {role: dict(values) for role, values in table.items()}


def _from_fields(values: dict):
    """A Preset from its fields with plain dicts for tables (the pickled form)."""
    return Preset(**{k: _frozen_synth(v) if SPEC[k][0] is dict else v for k, v in values.items()})


def _reduce(self):
    # mappingproxy tables do not pickle: a preset crosses to a worker process as plain dicts
    return _from_fields, ({f.name: _plain(getattr(self, f.name)) if SPEC[f.name][0] is dict
                           else getattr(self, f.name) for f in fields(self)},)


_TYPES = {str: str, float: float, int: int, list: tuple[int, int], dict: MappingProxyType}
# The dataclass is made from SPEC, so a key, its type and its default live in one place.
Preset = make_dataclass(
    "Preset", [(key, _TYPES[spec[0]], field(default_factory=lambda d=spec[3]: d) if spec[0] is dict
                else field(default=_default(key))) for key, spec in SPEC.items()],
    frozen=True, namespace={"beats_per_bar": property(_beats_per_bar), "with_values": _with_values,
                            "__reduce__": _reduce,
                            "__doc__": "Validated preset values, one field per key of SPEC (units and "
                                       "ranges there)."})
Preset.__module__ = __name__


def markdown_table() -> str:
    """The README's preset table (key, type, range, default, meaning), made from SPEC."""
    rows = ["| key | type | range | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for key, (kind, low, high, default, text) in SPEC.items():
        if kind is dict:
            rows.append(f"| `{key}` | table | see below | see below | {text} |")
            continue
        if kind in (int, float):
            allowed = f"{low:g} to {high:g}"
        elif kind is str:
            allowed = ", ".join(low) if low else "any"
        else:
            allowed = "two whole numbers"
        shown = f"[{default[0]}, {default[1]}]" if isinstance(default, list) else f"{default!r}".replace("'", '"')
        rows.append(f"| `{key}` | {'list' if kind is list else kind.__name__} | {allowed} | `{shown}` | {text} |")
    rows += ["", "| `[synth.melody]` / `[synth.chords]` key | type | range | default (melody / chords) | meaning |",
             "| --- | --- | --- | --- | --- |"]
    for key, (kind, low, high, text) in SYNTH_SPEC.items():
        allowed = ", ".join(low) if kind is str else f"{low:g} to {high:g}"
        shown = " / ".join(f"{SYNTH_DEFAULTS[r][key]!r}".replace("'", '"') for r in ("melody", "chords"))
        rows.append(f"| `{key}` | {kind.__name__} | {allowed} | `{shown}` | {text} |")
    return "\n".join(rows) + "\n"


def _check_number(key, value, kind, low, high, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PresetError(f"{where}: key '{key}': expected a number, got {value!r}")
    if kind is int and int(value) != value:
        raise PresetError(f"{where}: key '{key}': expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise PresetError(f"{where}: key '{key}': {value!r} is outside {low}..{high}")
    return kind(value)


def is_meter(numerator: int, denominator: int) -> bool:
    """Whether numerator/denominator is a time signature: a beat count of 1 or more over a
    whole, half, quarter, eighth or sixteenth note."""
    return numerator >= 1 and denominator in (1, 2, 4, 8, 16)


def _validate(data: dict, where: str) -> dict:
    out = {}
    for key, value in data.items():
        if key not in SPEC:
            raise PresetError(f"{where}: unknown key '{key}' (known: {', '.join(SPEC)})")
        kind, low, high, _, _ = SPEC[key]
        if kind is dict:
            out[key] = _validate_synth(value, where)
        elif kind in (int, float):
            out[key] = _check_number(key, value, kind, low, high, where)
        elif kind is str:
            if not isinstance(value, str) or (low and value not in low):
                allowed = f" (one of {', '.join(low)})" if low else ""
                raise PresetError(f"{where}: key '{key}': bad value {value!r}{allowed}")
            out[key] = value
        else:
            if (not isinstance(value, list) or len(value) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                raise PresetError(f"{where}: key '{key}': expected two whole numbers, got {value!r}")
            out[key] = tuple(value)
    if "meter" in out and not is_meter(*out["meter"]):
        raise PresetError(f"{where}: key 'meter': {list(out['meter'])} is not a time signature")
    if "grid" in out and 12 % out["grid"]:
        raise PresetError(f"{where}: key 'grid': {out['grid']} does not divide the 12 positions of a beat "
                          "(use 1, 2, 3, 4, 6 or 12)")
    if "recall_bars" in out and out["recall_bars"] % 2:  # models/form.py's spans are 2 bars (SPAN_BARS)
        raise PresetError(f"{where}: key 'recall_bars': {out['recall_bars']} is not a whole number of 2-bar "
                          "spans (use 2, 4, 6, 8, ...)")
    if "register" in out:
        low, high = out["register"]
        if not 0 <= low < high <= 127 or high - low < 12:
            raise PresetError(f"{where}: key 'register': {list(out['register'])} must span at "
                              "least an octave within 0..127")
    return out


def _toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string with its escapes is a TOML basic string
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)  # int or float: Python's spelling is TOML's (no inf or nan in SPEC's ranges)


def to_toml(preset, comment: str = "") -> str:
    """``preset`` as a TOML file's text that ``load_preset`` reads back equal: every key of
    SPEC, the [synth.<role>] tables last; ``comment`` (lines) on top as # comments."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [f"{key} = {_toml_value(getattr(preset, key))}" for key in SPEC if SPEC[key][0] is not dict]
    for role, values in preset.synth.items():
        lines += ["", f"[synth.{role}]"] + [f"{key} = {_toml_value(v)}" for key, v in values.items()]
    return "\n".join(lines) + "\n"


def bundled_names() -> list[str]:
    """Names of the presets shipped in presets/."""
    folder = resources.files("riffd.presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name_or_path: str | Path = "pop"):
    """Load a bundled preset by name, or a TOML file by path.

    Raises PresetError: unknown name, unreadable or malformed TOML, or a bad key/value;
    the message names the file (and the key).
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():  # a folder named like a preset ("jazz/") is no preset
        where, reader = str(path), path.read_bytes
    elif str(name_or_path) in bundled_names():
        resource = resources.files("riffd.presets") / f"{name_or_path}.toml"
        where, reader = f"presets/{name_or_path}.toml", resource.read_bytes
    else:
        raise PresetError(f"no preset named {str(name_or_path)!r} (bundled: "
                          f"{', '.join(bundled_names())}; or give a path to a .toml file)")
    try:
        data = tomllib.loads(reader().decode("utf-8"))
    except OSError as exc:
        raise PresetError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"{where}: not valid TOML: {exc}") from None
    values = _validate(data, where)
    values.setdefault("name", path.stem)
    if where == str(path) and _file_relative(values.get("model", "")):
        # a checkpoint beside its preset (finetune writes model = "."): the folder may move
        values["model"] = str((path.parent / values["model"]).resolve())
    return Preset(**values)


def _file_relative(model: str) -> bool:
    """Whether a preset file's ``model`` names a path relative to the file: ``.``,
    ``..``, or one starting ``./`` or ``../``."""
    return model in (".", "..") or model.startswith(("./", "../"))

