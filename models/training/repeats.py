"""A score's bars in the order a player plays them: repeats taken, endings chosen.

Folk tunes are written with each section once between repeat signs (|: A :|: B :|, an
AABB tune), and with first and second endings. Read as written, a 32-bar reel becomes
16 bars whose two endings follow each other, and the form that people repeat is gone
from what a model learns and from what an evaluation measures. ``played_order`` gives
the bar indices of the played form, by the conventions of printed music that ABC
writes down (the ABC standard 2.1, sections 4.8 "Repeat/bar symbols" and 4.9 "First and
second repeats"):

- an end repeat goes back to the last start repeat, else to the bar after the previous
  double bar or end repeat (or after its endings), else to the first bar: in
  |: A :| B :| the second sign repeats B alone (music21's ``expandRepeats`` goes back
  to the first bar there, and reads an AABB tune as AABAB);
- on the n-th time through, a bar inside an ending bracket plays only if the bracket
  holds n (first endings on the first time, second endings after the repeat);
- an end repeat plays its section ``times`` times in all (2 unless marked; at most
  ``MAX_TIMES``).
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_TIMES = 4  # a sign marked "x8" on a vamp is read as 4: enough for a form, not a loop


@dataclass(frozen=True)
class Bar:
    """What ``played_order`` needs of one written bar: a start repeat on its left, an end
    repeat on its right (``end_times``: how often its section plays; None: no sign), a
    double bar on its right (``double``: a section ends), and the numbers of the ending
    bracket it lies in (empty: none)."""
    start: bool = False
    end_times: int | None = None
    endings: frozenset[int] = frozenset()
    double: bool = False


def played_order(bars: list[Bar]) -> list[int]:
    """Indices into ``bars`` (written order) in played order, as the module docstring
    says. A score without repeat signs comes back as ``range(len(bars))``."""
    order: list[int] = []
    start = 0
    for i, bar in enumerate(bars):
        if bar.start:
            start = i
        order.append(i)
        if bar.endings and 1 not in bar.endings:
            start = i + 1  # a later ending closes its section: the next one starts after it
        if bar.double and bar.end_times is None:
            start = i + 1
        if bar.end_times is not None:
            for time in range(2, min(max(bar.end_times, 2), MAX_TIMES) + 1):
                order += [j for j in range(start, i + 1) if not bars[j].endings or time in bars[j].endings]
            start = i + 1
    return order
