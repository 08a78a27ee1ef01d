"""The house's shape, read from the code's own imports (ast): which room may import which,
no private names across modules, no module over 400 lines (README "Layout")."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("music", "presets", "bridges", "cython_ext", "models", "daemon")
OFFLINE = ("models.training", "models.evaluation")  # the offline pipeline: sub-packages of models

# room -> rooms it may import (itself always allowed)
ALLOWED = {
    "music": set(),
    "bridges": set(),
    "cython_ext": set(),
    "presets": {"music"},
    "models": {"music", "presets", "bridges", "cython_ext"},
    "daemon": {"music", "presets", "bridges", "cython_ext", "models"},
}
MAX_LINES = 400


def source_files():
    for room in ROOMS:
        yield from sorted((ROOT / room).rglob("*.py"))


def module_of(path: Path) -> str:
    """Dotted name under riffd of a source file (``models.training.train``)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path):
    """(line, imported module under riffd, imported names) of every import in ``path``;
    relative imports are resolved against the file's package."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_of(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("riffd."):
                    yield node.lineno, alias.name.removeprefix("riffd."), []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("riffd."):
                name = node.module.removeprefix("riffd.")
            elif node.module == "riffd":
                name = ""
            else:
                continue
            yield node.lineno, name, [a.name for a in node.names]


def violations(path: Path) -> list[str]:
    """Every broken rule of the layout in one file, as readable lines."""
    here = module_of(path)
    room = here.split(".")[0]
    out = []
    for line, target, names in imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        target_room = target.split(".")[0] if target else ""
        if target_room and target_room != room and target_room not in ALLOWED[room]:
            out.append(f"{where}: {room}/ may not import {target_room}/ ({target})")
        offline = lambda m: any(m == o or m.startswith(o + ".") for o in OFFLINE)  # noqa: E731
        if offline(target) and room == "models" and not offline(here):
            out.append(f"{where}: the live runtime in models/ may not import the offline pipeline ({target})")
        for name in names:
            if name.startswith("_") and not name.startswith("__"):
                out.append(f"{where}: imports the private name {name} from {target}")
        if any(p.startswith("_") and not p.startswith("__") for p in target.split(".")):
            out.append(f"{where}: imports the private module {target}")
    return out


def test_every_room_imports_only_downwards():
    found = [v for path in source_files() for v in violations(path)]
    assert not found, "\n".join(found)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in source_files()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


@pytest.mark.parametrize("room, line, rule", [
    ("models", "from riffd.daemon.engine import Engine", "may not import daemon/"),
    ("bridges", "from riffd.models import load_model", "may not import models/"),
    ("cython_ext", "import riffd.music.chords", "may not import music/"),
    ("presets", "from riffd.bridges import midi", "may not import bridges/"),
    ("music", "from riffd.presets import load_preset", "may not import presets/"),
    ("models", "from .training.dataset import load_split", "offline pipeline"),
    ("models", "from riffd.models.evaluation.features import features", "offline pipeline"),
    ("daemon", "from riffd.models.markov import _phase", "private name _phase"),
])
def test_a_forbidden_import_is_caught(tmp_path, monkeypatch, room, line, rule):
    """The checker itself fails on each kind of forbidden import."""
    fake_root = tmp_path
    (fake_root / room).mkdir()
    path = fake_root / room / "intruder.py"
    path.write_text(line + "\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = violations(path)
    assert any(rule in v for v in found), found


def test_allowed_imports_pass(tmp_path, monkeypatch):
    (tmp_path / "daemon").mkdir()
    path = tmp_path / "daemon" / "fine.py"
    path.write_text("from riffd.models.training.dataset import load_split\n"
                    "from riffd.music.chords import Chord\nfrom .engine import Engine\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert violations(path) == []
