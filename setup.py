"""Builds the Cython kernels in cython_ext/ (metadata lives in pyproject.toml).

Kernels are Cython in pure-Python mode (`cython_ext/*.py`): compiled here, and the same
source runs uncompiled as the pure-Python twin the tests compare against.
"""
from glob import glob
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# *_np.py files are numpy twins: plain Python, never compiled
sources = sorted(s for s in glob("cython_ext/*.py") + glob("cython_ext/*.pyx")
                 if not Path(s).name.startswith("__") and not s.endswith("_np.py"))
extensions = [
    Extension(f"riffd.cython_ext.{Path(src).stem}", [src], include_dirs=[numpy.get_include()],
              extra_compile_args=["-O3"])
    for src in sources
]
setup(ext_modules=cythonize(extensions, language_level=3, quiet=True) if extensions else [])
