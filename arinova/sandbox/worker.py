"""Child process that runs sandboxed scripts: ``python -I -m arinova.sandbox.worker``.

Reads requests from stdin and writes results to stdout, one at a time, each a frame of a
4-byte big-endian length and a JSON document: ``{"code": str}`` in, the ``engine.Result``
out. The parent kills the process when an answer takes too long or it misbehaves.
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
from typing import BinaryIO, Final

from arinova.sandbox.engine import run_javascript

#: address space for the whole process: QuickJS' own heap limit is far below it; this
#: stops anything the engine does not account for
ADDRESS_SPACE_LIMIT: Final = 1024 * 1024 * 1024
MAX_REQUEST_BYTES: Final = 1024 * 1024


def read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    size = int.from_bytes(header, "big")
    if size > MAX_REQUEST_BYTES:
        raise ValueError(f"request of {size} bytes is too large")
    payload = stream.read(size)
    return payload if len(payload) == size else None


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(len(payload).to_bytes(4, "big") + payload)
    stream.flush()


def serve(requests: BinaryIO, results: BinaryIO) -> None:
    while (frame := read_frame(requests)) is not None:
        code = json.loads(frame)["code"]
        result = run_javascript(code)
        write_frame(results, json.dumps(result, ensure_ascii=False).encode("utf-8", "replace"))


def main() -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    results = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the parent's pipe
    serve(sys.stdin.buffer, results)


if __name__ == "__main__":
    main()
