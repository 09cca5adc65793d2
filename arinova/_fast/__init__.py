"""Hot paths with a compiled (Cython) implementation and a pure-Python twin."""
