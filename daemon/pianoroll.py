"""Piano-roll pictures of a render: chord notes and melody notes in two colours, chord
names at their changes, bar lines; drawn with matplotlib (Agg), written as PNG to a
temporary name and renamed.

Drawn for speed, as the watched folder makes one per file. The frame (axes, bar lines,
ticks, labels, legend) depends only on the length in bars and the pitch range, so a
process draws it once per shape and keeps its pixels (matplotlib's blitting:
``copy_from_bbox`` / ``restore_region``); each picture then draws only its notes (one
``PolyCollection`` per part), chord names and title over those pixels. A full draw of
the frame cost 40-55 ms a file (axis ticks alone 15), a picture over a kept frame 10-15
ms plus the PNG. The pitch range is widened to whole half-octaves so that files of one
batch share frames. Fixed margins instead of ``tight_layout`` (which drew the figure
twice), a few musical ticks (bar numbers every 4 bars, the octaves' Cs), a bare Figure
without pyplot's figure manager, the PNG written by Pillow as RGB (the figure is opaque;
matplotlib's ``imsave`` writes RGBA: 17 ms for a 1600 x 450 picture against 11.5) with
zlib level 1 (a flat-coloured picture compresses nearly as well)."""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from riffd.bridges.atomic import atomic_path

CHORD_COLOUR = "#7f9cc4"
MELODY_COLOUR = "#e0662b"
DPI = 100
FRAMES_KEPT = 4  # frames of different shapes kept per process (about 3 MB of pixels each)
_frames: OrderedDict = OrderedDict()


class Frame:
    """A figure of one shape (``end`` beats, pitches ``low``-``high``) with its static
    parts drawn, and their pixels kept in ``background``."""

    def __init__(self, end: float, low: int, high: int, lines: tuple[float, ...]):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        self.high = high
        width = min(40.0, max(8.0, end / 4.0))
        self.figure = fig = Figure(figsize=(width, 4.5), dpi=DPI)
        self.canvas = FigureCanvasAgg(fig)
        self.axes = ax = fig.add_subplot()
        fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, bottom=0.12, top=0.9)
        ax.set_xlim(0, end)
        ax.set_ylim(low, high)
        lines = [b for b in lines if b <= end + 1e-9]
        ax.vlines(lines, low, high, colors="#999999", linewidths=0.6, zorder=0)
        labelled = range(0, len(lines), 4 if len(lines) <= 65 else 16)
        ax.set_xticks([lines[k] for k in labelled], [str(k + 1) for k in labelled])
        octaves = list(range(math.ceil(low / 12) * 12, high + 1, 12))
        ax.set_yticks(octaves, [f"C{p // 12 - 1}" for p in octaves])
        ax.set_xlabel("bar")
        ax.set_ylabel("pitch")
        # above the axes, so that no note is ever drawn over it (or under it)
        ax.legend(handles=[Patch(color=CHORD_COLOUR, label="chords"), Patch(color=MELODY_COLOUR, label="melody")],
                  loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=7, frameon=False,
                  borderaxespad=0.1)
        from matplotlib.transforms import Affine2D
        # a label's outline is in points from its baseline: 1.5 pt right of the change, 8 pt below the top
        self.points = Affine2D().translate(1.5, -8.0).scale(fig.dpi / 72.0)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def draw(self, chords, melody, chord_names, title: str):
        """The frame's pixels with these notes, names and title over them: an RGBA
        memoryview of shape (height, width, 4), valid until the next draw."""
        from matplotlib.collections import PathCollection, PolyCollection

        ax, fig = self.axes, self.figure
        self.canvas.restore_region(self.background)
        artists = []
        for part, colour in ((chords, CHORD_COLOUR), (melody, MELODY_COLOUR)):
            boxes = [((s, p - 0.4), (e, p - 0.4), (e, p + 0.4), (s, p + 0.4)) for s, e, p in part]
            artists.append(ax.add_collection(PolyCollection(boxes, facecolors=colour, linewidths=0,
                                                            animated=True), autolim=False))
        if chord_names:
            # one collection of cached glyph outlines: a Text per name cost 0.7 ms to lay out and draw
            artists.append(ax.add_collection(PathCollection(
                [label(name) for _, name in chord_names], offsets=[(b, self.high) for b, _ in chord_names],
                offset_transform=ax.transData, transform=self.points, facecolors="#333333", linewidths=0,
                animated=True), autolim=False))
        for artist in artists:
            ax.draw_artist(artist)
        if title:
            artists.append(fig.text(0.5, 0.955, title, fontsize=9, ha="center", va="bottom", animated=True))
            fig.draw_artist(artists[-1])
        for artist in artists:
            artist.remove()
        return self.canvas.buffer_rgba()


@lru_cache(maxsize=512)
def label(name: str):
    """The outline of a chord name at 7 pt, in points from its baseline (a TextPath)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    return TextPath((0.0, 0.0), name, size=7, prop=FontProperties(size=7))


def warm() -> None:
    """Import matplotlib's parts and load the label font now (a worker's start-up)."""
    from PIL import Image  # noqa: F401
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.collections import PathCollection  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401
    label("C")


def frame(end: float, low: int, high: int, lines: tuple[float, ...]) -> Frame:
    """This process's Frame of that shape (``lines``: the bar lines' beats), drawn on
    first use (the least recently used of more than FRAMES_KEPT is dropped)."""
    key = (end, low, high, lines)
    if key in _frames:
        _frames.move_to_end(key)
    else:
        _frames[key] = Frame(end, low, high, lines)
        while len(_frames) > FRAMES_KEPT:
            _frames.popitem(last=False)
    return _frames[key]


def piano_roll(path: str | Path, chords, melody, chord_names, bar_lines: Sequence[float],
               title: str = "") -> None:
    """Draw ``chords`` and ``melody`` as (start beat, end beat, pitch) to ``path``;
    ``chord_names`` as (beat, name); ``bar_lines``: their beats (a file's, through its
    meter changes: models/meters.py). The pitch axis spans the notes with a margin,
    widened to whole octaves (C to C)."""
    from PIL import Image

    notes = list(chords) + list(melody)
    end = max((n[1] for n in notes), default=4.0)
    low = 12 * math.floor((min((n[2] for n in notes), default=48) - 2) / 12)
    high = 12 * math.ceil((max((n[2] for n in notes), default=84) + 3) / 12)
    pixels = frame(end, low, high, tuple(bar_lines)).draw(chords, melody, chord_names, title)
    height, width = pixels.shape[:2]
    rgb = Image.frombuffer("RGBA", (width, height), pixels, "raw", "RGBA", 0, 1).convert("RGB")
    with atomic_path(path) as tmp:
        rgb.save(tmp, format="png", compress_level=1, dpi=(DPI, DPI))
