"""`riffd bench synth`: how fast the synthesizer renders a real piece, next to FluidSynth.

The piece: the chords of the latency benchmark's real tunes (folk tunes with chord
symbols and Bach chorales, block chords) for ``minutes`` at 120 BPM, with a melody by
the rules model, written as a MIDI file at 480 PPQN (FluidSynth 2.3 can hang in -F mode
at music21's 10,080 ticks per beat). riffd renders it to a WAV (voices, synthesis,
16-bit file); FluidSynth renders the same file offline with a General MIDI SoundFont. Each run is timed whole (wall clock, best of ``repeat``) and stopped after
``limit_s``. Realtime factor: seconds of audio per second of rendering.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import mido

from .benchmachine import Meter

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")


def piece(minutes: float, folder: Path, bpm: float = 120.0) -> tuple[Path, float]:
    """A chords-and-melody MIDI file of ``minutes`` at ``bpm``; returns (path, seconds)."""
    from riffd.bridges.midiwrite import melody_track, write_atomic
    from riffd.models import load_model
    from riffd.models.protocol import MelodyNote
    from riffd.music.chords import recognize
    from riffd.presets import load_preset

    from .benchlive import session_chords
    from .render import render_file
    beats = minutes * bpm
    chords = [c for c in session_chords(beats) if recognize(c[2])]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)]))
    block = [MelodyNote(s, e - s, p, 70) for s, e, ps, _ in chords for p in ps]
    midi.tracks.append(melody_track(block, 480, 0, name="chords"))
    chords_path, out = folder / "piece-chords.mid", folder / "piece.mid"
    write_atomic(midi, chords_path)
    render_file(chords_path, out, load_preset("pop").with_values(tempo=bpm), load_model("rules"), seed=1)
    return out, beats * 60.0 / bpm


def riffd_render(path: Path, wav: Path) -> None:
    from riffd.bridges.midifile import find_chord_track, read_song
    from riffd.presets import load_preset

    from .audio import Part, render_parts, tempo_map, write_wav
    song = read_song(path)
    preset = load_preset("pop")
    at = tempo_map(song)
    index = find_chord_track(song)
    parts = [Part([(at(n.start), at(n.end), n.pitch, n.velocity) for n in track],
                  preset.synth["chords" if k == index else "melody"])
             for k, track in enumerate(song.tracks) if track]
    write_wav(render_parts(parts), wav)


def soundfont() -> str | None:
    return next((s for s in SOUNDFONTS if Path(s).exists()), None)


def synth(minutes: float = 4.0, repeat: int = 3, limit_s: float = 300.0, as_json: bool = False, echo=print) -> dict:
    """Run the benchmark; echo lines and, with ``as_json``, one JSON object last."""
    meter, result = Meter(), {"minutes": minutes, "sample_rate": 44100}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, seconds = piece(minutes, folder)
        result["audio_s"] = round(seconds, 2)
        riffd_render(path, folder / "warm.wav")  # imports and the kernel's first call
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            riffd_render(path, folder / "riffd.wav")
            times.append(time.perf_counter() - t0)
        result["render_s"] = round(min(times), 4)
        result["realtime_factor"] = round(seconds / min(times), 1)
        echo(f"riffd: {seconds:.0f} s of audio in {min(times) * 1000:.1f} ms: {result['realtime_factor']:,}x realtime")
        fluid, font = shutil.which("fluidsynth"), soundfont()
        if fluid and font:
            fluid_times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                try:
                    subprocess.run([fluid, "-ni", "-q", "-F", str(folder / "fluid.wav"), "-r", "44100", font,
                                    str(path)], check=True, timeout=limit_s, capture_output=True)
                except subprocess.TimeoutExpired:
                    echo(f"fluidsynth: stopped after {limit_s:g} s")
                    break
                fluid_times.append(time.perf_counter() - t0)
            if fluid_times:
                result["fluidsynth_render_s"] = round(min(fluid_times), 4)
                result["fluidsynth_realtime_factor"] = round(seconds / min(fluid_times), 1)
                result["vs_fluidsynth"] = round(min(fluid_times) / min(times), 1)
                echo(f"fluidsynth ({Path(font).name}): {result['fluidsynth_realtime_factor']:,}x realtime; "
                     f"riffd is {result['vs_fluidsynth']}x faster")
        else:
            echo("fluidsynth or a General MIDI SoundFont is missing (make bench installs them)")
    meter.finish(result, echo)
    if as_json:
        echo(json.dumps(result))
    return result
