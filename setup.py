"""Build the Cython modules of arinova/_fast.

Every ``arinova/_fast/_*.pyx`` becomes an extension module of the same name. Each has a
pure-Python twin (``_<name>_py.py``) that the package uses when the extension is missing
or when ``ARINOVA_PURE=1`` is set. ``ARINOVA_DEBUG_BUILD=1`` compiles with line tracing
and writes Cython's annotated HTML next to the sources.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).parent
DEBUG = os.environ.get("ARINOVA_DEBUG_BUILD") == "1"


def extensions() -> list[Extension]:
    from Cython.Build import cythonize

    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []
    exts = [
        Extension(
            f"arinova._fast.{pyx.stem}",
            [str(pyx.relative_to(HERE))],
            define_macros=macros,
            extra_compile_args=["-O0", "-g"] if DEBUG else ["-O2"],
        )
        for pyx in sorted((HERE / "arinova" / "_fast").glob("_*.pyx"))
    ]
    directives = {
        "language_level": "3",
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "cdivision": True,
        "linetrace": DEBUG,
        "profile": DEBUG,
    }
    return list(cythonize(exts, compiler_directives=directives, annotate=DEBUG))


setup(ext_modules=extensions())
