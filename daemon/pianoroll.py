"""Piano-roll pictures of a render: chord notes and melody notes in two colours, chord
names at their changes, bar lines; drawn with matplotlib (Agg), written as PNG to a
temporary name and renamed.

Drawn for speed, as the watched folder makes one per file: each part's notes are one
``PolyCollection`` (one artist per part, where a patch per note
cost 0.1 ms each to add and again to draw), bar lines one ``vlines`` collection, fixed
margins instead of ``tight_layout`` (which drew the figure twice), a figure title (an
axes title is placed by measuring every tick label), a handful of musical ticks (bar
numbers every 4 bars, the octaves' Cs; matplotlib's automatic ticks took 25 ms of
drawing), a bare Figure without pyplot's figure manager, and the PNG written with zlib
level 1 (a flat-coloured picture compresses nearly as well)."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

CHORD_COLOUR = "#7f9cc4"
MELODY_COLOUR = "#e0662b"


def piano_roll(path: str | Path, chords, melody, chord_names, beats_per_bar: float, title: str = "") -> None:
    """Draw ``chords`` and ``melody`` as (start beat, end beat, pitch) to ``path``;
    ``chord_names`` as (beat, name); a bar line every ``beats_per_bar`` beats."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    notes = list(chords) + list(melody)
    end = max((n[1] for n in notes), default=beats_per_bar)
    low = min((n[2] for n in notes), default=48) - 2
    high = max((n[2] for n in notes), default=84) + 3
    width = min(40.0, max(8.0, end / 4.0))
    fig = Figure(figsize=(width, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, bottom=0.12, top=0.92)
    ax.set_xlim(0, end)
    ax.set_ylim(low, high)
    for part, colour in ((chords, CHORD_COLOUR), (melody, MELODY_COLOUR)):
        boxes = [((s, p - 0.4), (e, p - 0.4), (e, p + 0.4), (s, p + 0.4)) for s, e, p in part]
        ax.add_collection(PolyCollection(boxes, facecolors=colour, linewidths=0), autolim=False)
    bar_count = int(end / beats_per_bar)
    ax.vlines([k * beats_per_bar for k in range(bar_count + 1)], low, high, colors="#999999", linewidths=0.6,
              zorder=0)
    labelled = range(0, bar_count + 1, 4 if bar_count <= 64 else 16)
    ax.set_xticks([k * beats_per_bar for k in labelled], [str(k + 1) for k in labelled])
    octaves = [p for p in range(math.ceil(low / 12) * 12, int(high) + 1, 12)]
    ax.set_yticks(octaves, [f"C{p // 12 - 1}" for p in octaves])
    for beat, name in chord_names:
        ax.text(beat, high - 0.5, name, fontsize=7, va="top", ha="left", color="#333333")
    ax.set_xlabel("bar")
    ax.set_ylabel("pitch")
    if title:
        fig.text(0.5, 0.95, title, fontsize=9, ha="center", va="bottom")
    ax.legend(handles=[Patch(color=CHORD_COLOUR, label="chords"), Patch(color=MELODY_COLOUR, label="melody")],
              loc="lower right", fontsize=7)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
