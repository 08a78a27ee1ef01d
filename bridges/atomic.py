"""Output files written whole or not at all: under a temporary name beside the target,
then renamed, so that a watcher of the outbox (a DAW's browser, a script) never reads
half a file. Used for every file riffd writes beside a user's: MIDI, WAV, PNG, JSON."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# read once, at import (setting it to read it is process-wide, so never from a worker thread)
_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(OSError):
    """An output path riffd cannot write: its folder cannot be made or written to."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (``.NAME.XXXXXXXX.part``: hidden, and ignored by
    the watched folder) for the caller to write; ``path``'s folder is made if missing. On
    success it gets a new file's permissions (0666 less the umask; mkstemp makes 0600)
    and is renamed to ``path``; on any error it is removed and the error raised again.
    Raises OutputError (naming ``path``, not the temporary name) where the folder cannot
    be made or written to."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except (FileExistsError, NotADirectoryError):  # mkdir met a file where a folder should be
        raise OutputError(f"{path}: cannot write there (a file stands in its folder's path)") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
