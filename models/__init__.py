"""Melody models behind one protocol (start, extend, generate, rollback); see protocol.py."""
from __future__ import annotations

import importlib
from pathlib import Path

BUILTIN = ("rules", "markov")


def load_model(name: str):
    """A fresh model by name: ``rules``, ``markov``, or the path of a markov table (.json).

    The module ``riffd.models.<name>`` provides ``MODEL``, the class (no registry to keep).
    Raises ValueError for an unknown name or an unreadable file.
    """
    if name in BUILTIN:
        return importlib.import_module(f"riffd.models.{name}").MODEL()
    path = Path(name)
    if path.suffix == ".json" or path.is_file() or (path / "model.json").is_file():
        from .markov import MarkovModel, MarkovTable
        table_path = path / "model.json" if path.is_dir() else path
        try:
            return MarkovModel(MarkovTable.load(table_path))
        except OSError as exc:
            raise ValueError(f"{table_path}: cannot read model: {exc.strerror or exc}") from None
    raise ValueError(f"unknown model {name!r} (choose {', '.join(BUILTIN)}, or a path to a model)")
