"""Hot kernels in Cython pure-Python mode, each with a pure-Python twin that tests prove it
agrees with: the twin is the same source file run by the interpreter."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def kernel(name: str) -> ModuleType:
    """The kernel module ``riffd.cython_ext.<name>``: compiled if ``make build`` ran,
    else the twin, with a warning on stderr (it is correct, only slower)."""
    module = importlib.import_module(f"{__name__}.{name}")
    if not is_compiled(module):
        print(f"riffd: the Cython kernel {name!r} is not built; using its pure-Python twin "
              "(run `make build`)", file=sys.stderr)
    return module


def is_compiled(module: ModuleType) -> bool:
    """True when ``module`` is a compiled extension, not Python source."""
    return not str(module.__file__).endswith(".py")


def twin(name: str) -> ModuleType:
    """The pure-Python twin of kernel ``name``: its source, run by the interpreter."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"{__name__}._twin_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
