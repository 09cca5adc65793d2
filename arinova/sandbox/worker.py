"""Child process that runs sandboxed scripts: ``python -I -m arinova.sandbox.worker``.

Reads requests from stdin and writes results to stdout, one at a time, each a frame of a
4-byte big-endian length and a JSON document: ``{"code": str}`` in, the ``engine.Result``
out. The parent kills the process when an answer takes too long or it misbehaves.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import sys
from typing import BinaryIO, Final

from arinova.sandbox.engine import TIME_LIMIT_S, run_javascript

#: address space for the whole process: QuickJS' own heap limit is far below it; this
#: stops anything the engine does not account for
ADDRESS_SPACE_LIMIT: Final = 1024 * 1024 * 1024
MAX_REQUEST_BYTES: Final = 1024 * 1024
#: CPU seconds a run may use before the kernel stops the process: QuickJS' 5 s plus room
#: for setting up the context and reading the output back
CPU_LIMIT_S: Final = TIME_LIMIT_S + 1.5


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


def limit_cpu_for_next_run() -> None:
    """Let the process use at most ``CPU_LIMIT_S`` more CPU seconds (then the kernel ends
    it with SIGXCPU). QuickJS' own limit comes first; this one also covers work QuickJS
    cannot interrupt, such as a catastrophically backtracking regular expression."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(spent + CPU_LIMIT_S)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def serve(requests: BinaryIO, results: BinaryIO) -> None:
    while (frame := read_frame(requests)) is not None:
        code = json.loads(frame)["code"]
        limit_cpu_for_next_run()
        result = run_javascript(code)
        write_frame(results, json.dumps(result, ensure_ascii=False).encode("utf-8", "replace"))


def main() -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would dump core
    results = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the parent's pipe
    serve(sys.stdin.buffer, results)


if __name__ == "__main__":
    main()
