"""One-line logs to stderr: time, level, room, message (for a terminal, journald or launchd).

Every logger is named ``riffd.<room>`` (daemon, bridges, models); the room is the
second part of the name.
"""
from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.room = record.name.split(".")[1] if record.name.count(".") else record.name
        line = super().format(record)
        return " | ".join(part for part in line.splitlines() if part.strip())  # one line, always


def reason(exc: BaseException) -> str:
    """An error in one line for a log, a reply or an error file: the first line of its
    message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def setup(level: str = "info", stream=None) -> None:
    """Send riffd's logs at ``level`` (one of LEVELS) and above to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_OneLine("%(asctime)s.%(msecs)03d %(levelname)s %(room)s: %(message)s",
                                  datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("riffd")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
