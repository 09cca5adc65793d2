"""The WebSocket frame codec: the compiled one, or its pure-Python twin.

The twin is used when the extension is not built or ``ARINOVA_PURE=1`` is set. Both
share ``FrameError`` and the constants, so callers never care which one runs.
"""

from __future__ import annotations

import os

from ._frames_py import *  # noqa: F403
from ._frames_py import __all__ as _names

COMPILED = False
if os.environ.get("ARINOVA_PURE") != "1":
    try:
        from ._frames import *  # type: ignore  # noqa: F403

        COMPILED = True
    except ImportError:
        pass

__all__ = [*_names, "COMPILED"]
