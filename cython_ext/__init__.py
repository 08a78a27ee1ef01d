"""Hot kernels in Cython, each with a pure-Python twin that tests prove it agrees with."""
