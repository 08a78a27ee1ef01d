"""A fast BLAS under MLX on Linux.

The Linux ``mlx[cpu]`` wheel links the reference (netlib) BLAS it bundles, which makes
matrix products about 15x slower than OpenBLAS. ``use_fast_blas()`` loads OpenBLAS with
``RTLD_GLOBAL`` before ``mlx.core`` is imported: the dynamic loader searches the global
scope before a library's own dependencies, so MLX's ``cblas_sgemm`` (and LAPACK's
``sgemm_``) then bind to OpenBLAS. ``make`` installs Debian's ``libopenblas0-pthread``.
Set ``RIFFD_BLAS`` to a library path to choose another, or to ``reference`` to keep
the bundled one.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
)

_loaded: str | None = None


def use_fast_blas() -> str | None:
    """Load OpenBLAS globally so that MLX uses it; returns its path, or None where it is
    not needed (macOS: Accelerate), not found, or ``mlx.core`` was imported first (then
    the bundled BLAS is already bound and a warning says so on stderr)."""
    global _loaded
    if _loaded or sys.platform != "linux":
        return _loaded
    choice = os.environ.get("RIFFD_BLAS", "")
    if choice == "reference":
        return None
    if "mlx.core" in sys.modules:
        print("riffd: mlx was imported before riffd could load OpenBLAS; matrix work uses "
              "the slow reference BLAS", file=sys.stderr)
        return None
    for path in ([choice] if choice else CANDIDATES):
        if Path(path).exists():
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            _loaded = path
            return path
    return None
