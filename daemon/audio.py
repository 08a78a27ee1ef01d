"""WAV previews: a song's chord and melody notes through the synthesizer kernel.

Notes become voices here (times in samples, the preset's ``[synth]`` patch per part,
voice stealing), ``cython_ext/synth.py`` renders them, and the standard library's
``wave`` writes 16-bit stereo PCM, to a temporary name then renamed. The mix is scaled
down only if it would clip (to a peak of -1 dBFS).
"""
from __future__ import annotations

import bisect
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from riffd.cython_ext import kernel

from riffd.bridges.atomic import atomic_path

RATES = (44100, 48000)
MAX_VOICES = 32        # per part; the oldest voice is stolen past this
STEAL_RELEASE_S = 0.005  # a stolen voice fades out this fast (no click)
PEAK = 10 ** (-1 / 20)   # -1 dBFS
WAV_BLOCK = 65536        # frames converted to 16 bits at a time


@dataclass(frozen=True)
class Part:
    """Notes to play with one patch: ``notes`` as (start s, end s, pitch, velocity),
    ``patch`` a ``[synth.<role>]`` table of the preset (presets/schema.py SYNTH_SPEC)."""
    notes: list[tuple[float, float, int, int]]
    patch: dict


def voices(part: Part, rate: int, max_voices: int = MAX_VOICES) -> dict:
    """The kernel's arrays for ``part`` (see synth.render): note-on and note-off in
    samples, release, frequency (12-TET, A4 = 440 Hz), amplitude (velocity squared x
    gain), and voice stealing: a note that starts while ``max_voices`` sound ends the
    oldest one with a 5 ms release."""
    synth = kernel("synth")
    p = part.patch
    notes = sorted(part.notes)
    count = len(notes)
    start = np.array([round(n[0] * rate) for n in notes], dtype=np.int64)
    off = np.array([max(1, round((n[1] - n[0]) * rate)) for n in notes], dtype=np.int64)
    release = np.full(count, max(1.0, p["release_ms"] * rate / 1000.0))
    sounding: list[int] = []
    for k in range(count):
        sounding = [j for j in sounding if start[j] + off[j] + release[j] > start[k]]
        if len(sounding) >= max_voices:
            oldest = min(sounding, key=lambda j: start[j])
            off[oldest] = max(1, min(off[oldest], start[k] - start[oldest]))
            release[oldest] = min(release[oldest], STEAL_RELEASE_S * rate)
            sounding.remove(oldest)
        sounding.append(k)
    adsr = np.zeros((count, 4))
    adsr[:, 0] = max(1.0, p["attack_ms"] * rate / 1000.0)
    adsr[:, 1] = max(1.0, p["decay_ms"] * rate / 1000.0)
    adsr[:, 2] = release
    adsr[:, 3] = p["sustain"]
    return dict(start=start, off=off, length=off + np.ceil(release).astype(np.int64),
                freq=440.0 * 2.0 ** ((np.array([n[2] for n in notes], dtype=np.float64) - 69.0) / 12.0),
                amp=p["gain"] * (np.array([n[3] for n in notes], dtype=np.float64) / 127.0) ** 2,
                timbre=np.full(count, synth.TIMBRES[p["timbre"]], dtype=np.int32),
                pan=np.full(count, float(p["pan"])), adsr=adsr,
                coef=np.tile(np.array(synth.lowpass(p["cutoff_hz"], p["resonance"], rate)), (count, 1)))


def render_parts(parts: list[Part], rate: int = 44100) -> np.ndarray:
    """Stereo float64 PCM, shape (samples, 2), of every part mixed: long enough for the
    last release. Raises ValueError for a rate other than 44,100 or 48,000 Hz."""
    if rate not in RATES:
        raise ValueError(f"sample rate {rate} Hz: riffd renders at 44100 or 48000")
    synth = kernel("synth")
    arrays = [voices(part, rate) for part in parts if part.notes]
    total = max((int((a["start"] + a["length"]).max()) for a in arrays), default=0)
    out = np.empty((total, 2))
    out.fill(0.0)  # touched in order here: the kernel's first touches, pitch by pitch, cost 3x more
    for a in arrays:
        synth.render(out, a["start"], a["off"], a["length"], a["freq"], a["amp"], a["timbre"], a["pan"],
                     np.ascontiguousarray(a["adsr"]), np.ascontiguousarray(a["coef"]), float(rate))
    return out


def write_wav(pcm: np.ndarray, path: str | Path, rate: int = 44100) -> None:
    """16-bit stereo WAV of ``pcm`` (samples, 2), scaled to -1 dBFS if it would clip;
    written to a temporary name and renamed."""
    peak = max(float(pcm.max()), -float(pcm.min())) if len(pcm) else 0.0
    gain = 32767.0 * (PEAK / peak if peak > PEAK else 1.0)  # scaled, nothing passes -1 dBFS
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, wave.open(raw, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        # in blocks that stay in cache: a 4-minute mix is 170 MB of float64, and
        # whole-array temporaries cost as much as the synthesis
        for i in range(0, len(pcm), WAV_BLOCK):
            block = pcm[i:i + WAV_BLOCK] * gain
            w.writeframesraw(memoryview(np.rint(block, out=block).astype("<i2")).cast("B"))


def tempo_map(song) -> Callable[[float], float]:
    """Seconds at a tick (a float) through the song's set_tempo events (mido.tick2second):
    120 BPM before the first, as the Standard MIDI File specification has it, each then
    until the next."""
    ticks, secs, tempos = [0], [0.0], [mido.bpm2tempo(120)]
    for tick, tempo in song.tempos:  # sorted by tick; microseconds per quarter note
        if tick > ticks[-1]:
            secs.append(secs[-1] + mido.tick2second(tick - ticks[-1], song.ppqn, tempos[-1]))
            ticks.append(tick)
            tempos.append(tempo)
        else:  # the last of several at one tick rules
            tempos[-1] = tempo

    def at(t: float) -> float:
        i = bisect.bisect_right(ticks, t) - 1
        return secs[i] + mido.tick2second(t - ticks[i], song.ppqn, tempos[i])
    return at


def song_parts(song, melody, preset, chord_tracks: tuple[int, ...]) -> list[Part]:
    """The chord tracks (indices) and the melody of a render as Parts, in seconds through
    the song's tempo changes (``tempo_map``); ``melody`` as MelodyNotes in beats. Read
    at its first tempo throughout, a file that slowed down was previewed too fast. Chord
    notes sound as the sustain pedal holds them (Song.held): a pianist's chords
    struck short under the pedal were previewed as staccato blips."""
    at, ppqn = tempo_map(song), song.ppqn
    chords = [(at(n.start), at(n.end), n.pitch, n.velocity) for k in chord_tracks for n in song.held(k)]
    lead = [(at(n.start * ppqn), at(n.end * ppqn), n.pitch, n.velocity) for n in melody]
    return [Part(chords, preset.synth["chords"]), Part(lead, preset.synth["melody"])]
