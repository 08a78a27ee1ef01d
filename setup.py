"""Builds the Cython kernels in cython_ext/ (metadata lives in pyproject.toml)."""
from glob import glob
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(f"riffd.cython_ext.{Path(src).stem}", [src], include_dirs=[numpy.get_include()])
    for src in sorted(glob("cython_ext/*.pyx"))
]
setup(ext_modules=cythonize(extensions, language_level=3, quiet=True) if extensions else [])
