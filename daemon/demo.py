"""`riffd demo`: the main job on real data from the music21 corpus."""
from __future__ import annotations

from pathlib import Path

from riffd.bridges.midifile import read_song
from riffd.bridges.midiwrite import write_atomic
from riffd.models import load_or_fallback
from riffd.models.training.corpus import chord_symbol_paths, chord_symbol_tunes, chorale, corpus_root

from riffd.presets import load_preset
from .render import render_file

DEMO_CHORALE = "bwv269"  # "Aus meines Herzens Grunde"


def run_demo(out_dir: str | Path = "demo-out", model_name: str | None = None, seed: int = 7, echo=print) -> list:
    """Export a chorale's chord track and a tune's chord symbols from the corpus, render a
    melody for each with ``model_name`` (None: each preset's own model), and describe the
    results. Returns the RenderReports."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    path = next((corpus_root() / "bach").glob(f"{DEMO_CHORALE}.*"))
    jobs.append((chorale(path), "chorale", f"Bach chorale {DEMO_CHORALE}, chords from alto/tenor/bass"))
    tune = next(t for p in chord_symbol_paths() for t in chord_symbol_tunes(p))
    jobs.append((tune, "fiddle", f"{tune.name}, chord symbols from the Nottingham Music Database"))
    reports = []
    for piece, preset_name, label in jobs:
        chords_mid = out / f"{piece.name}-chords.mid"
        write_atomic(piece.to_midi(with_melody=False), chords_mid)
        preset = load_preset(preset_name)
        name = model_name or preset.model
        report = render_file(chords_mid, out / f"{piece.name}-riffd.mid", preset,
                             load_or_fallback(name, warn=echo), seed=seed,
                             wav=out / f"{piece.name}-riffd.wav", png=out / f"{piece.name}-riffd.png")
        reports.append(report)
        echo(f"{label}\n  input:  {chords_mid}\n  output: {report.summary()}\n"
             f"  preview: {out / (piece.name + '-riffd.wav')}, {out / (piece.name + '-riffd.png')}")
        song = read_song(report.output)
        echo(f"  {len(song.tracks)} tracks, {song.ppqn} PPQN, {song.tempo:g} BPM, "
             f"{song.meter[0]}/{song.meter[1]}; preset {preset_name}, model {name}, seed {seed}")
    return reports
