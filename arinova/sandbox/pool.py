"""A few sandbox worker processes, driven from the event loop without blocking it.

Each process runs one script at a time (``arinova.sandbox.worker``). A script gets a worker
when one of ``size`` slots is free, handed out by ``fair.FairSlots``: one run at a time per
owner (the user), round-robin between owners, at most ``max_waiting`` runs waiting in all
and ``max_waiting_per_owner`` of one owner, each for at most ``max_wait_s``; past a bound a
``SandboxBusy`` (its subclass names which) is raised. A run without an owner is an owner
of its own (first come, first served). QuickJS stops a script at its CPU-time limit; what
it cannot interrupt (a backtracking regular expression) meets the worker's RLIMIT_CPU,
and the kernel ends the process (answered as a timeout). A worker that still has not
answered ``hard_timeout_s`` after it got the script is killed, as is a worker that
crashed or broke the protocol. Workers start lazily, are reused, and are
replaced after ``max_runs`` scripts, or at once after a script that ran out of memory
(QuickJS' heap is not reliable after that: a second out-of-memory run in one process
reports a bare ``Error`` or crashes it). QuickJS can also fault in its out-of-memory path
(building the backtrace of a half-made error, depending on the heap's layout), so a run
whose worker died of a fault of its own (SIGSEGV, SIGBUS, SIGABRT, SIGILL) is run again
on a fresh worker, up to ``FAULT_ATTEMPTS`` times in all, before it is answered as a crash. Worker processes get an empty
environment: none of the server's secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Hashable
from typing import Final

from arinova.sandbox.engine import OUT_OF_MEMORY_MESSAGE, TIME_LIMIT_S, TIMEOUT_MESSAGE, Result
from arinova.sandbox.fair import FairSlots, SandboxBusy

__all__ = ["CRASH_MESSAGE", "SandboxBusy", "WorkerFailed", "WorkerPool"]

log = logging.getLogger("arinova.sandbox")

CRASH_MESSAGE: Final = "Error: Script execution failed"
MAX_RESULT_BYTES: Final = 4 * 1024 * 1024
#: exit statuses of a worker that faulted by itself (not killed by us or the kernel's limits)
#: runs of one script on fresh workers while each faults (the fault depends on the heap's
#: layout, so a fresh process seldom faults again)
FAULT_ATTEMPTS: Final = 3
FAULTS: Final = frozenset(
    -s for s in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL)
)
WORKER_COMMAND: Final = (sys.executable, "-I", "-m", "arinova.sandbox.worker")


class WorkerFailed(Exception):
    """The worker died or answered something that is not a result."""


class _Worker:
    __slots__ = ("process", "runs")

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.runs = 0

    @classmethod
    async def start(cls) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            *WORKER_COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={"LANG": "C.UTF-8"},
        )
        return cls(process)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def run(self, code: str) -> Result:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        request = json.dumps({"code": code}).encode()
        self.runs += 1
        try:
            stdin.write(len(request).to_bytes(4, "big") + request)
            await stdin.drain()
            size = int.from_bytes(await stdout.readexactly(4), "big")
            if size > MAX_RESULT_BYTES:
                raise WorkerFailed(f"result of {size} bytes")
            answer = json.loads(await stdout.readexactly(size))
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise WorkerFailed(str(exc)) from exc
        return _checked(answer)

    async def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(Exception):
            await self.process.wait()


def _checked(answer: object) -> Result:
    if not isinstance(answer, dict):
        raise WorkerFailed("result is not an object")
    output, error, elapsed = (
        answer.get("output"),
        answer.get("error"),
        answer.get("executionTimeMs"),
    )
    if not isinstance(output, str) or not (error is None or isinstance(error, str)):
        raise WorkerFailed("result has the wrong shape")
    if not isinstance(elapsed, int) or isinstance(elapsed, bool):
        raise WorkerFailed("result has the wrong shape")
    return {"output": output, "error": error, "executionTimeMs": elapsed}


class WorkerPool:
    def __init__(
        self,
        *,
        size: int = 2,
        max_waiting: int = 32,
        max_waiting_per_owner: int = 3,
        max_wait_s: float = 20.0,
        hard_timeout_s: float = 30.0,
        max_runs: int = 500,
    ) -> None:
        self._slots = FairSlots(
            size,
            max_waiting=max_waiting,
            max_waiting_per_owner=max_waiting_per_owner,
            max_wait_s=max_wait_s,
        )
        self.max_wait_s = max_wait_s
        self._hard_timeout_s = hard_timeout_s
        self._max_runs = max_runs
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        """Runs waiting for a slot."""
        return self._slots.waiting

    @property
    def running(self) -> int:
        """Runs holding a slot."""
        return self._slots.running

    async def run(self, code: str, *, owner: Hashable | None = None) -> Result:
        """Run ``code`` once a slot is free for ``owner``; raises ``SandboxBusy``."""
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        owner = object() if owner is None else owner
        await self._slots.acquire(owner)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            for _ in range(FAULT_ATTEMPTS):
                result = await self._run_on_worker(code)
                if result is not None:
                    return result
            return _failure(CRASH_MESSAGE, started, loop.time())
        finally:
            self._slots.release(owner)

    async def _run_on_worker(self, code: str) -> Result | None:
        """The script's result on one worker; ``None`` when the worker faulted."""
        worker = self._take_idle() or await self._start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self._hard_timeout_s):
                result = await worker.run(code)
        except TimeoutError:
            log.warning("sandbox: worker %s did not answer in time; killed", worker.process.pid)
            await self._discard(worker)
            return _failure(TIMEOUT_MESSAGE, started, loop.time())
        except WorkerFailed as exc:
            await self._discard(worker)
            ended = loop.time()
            if worker.process.returncode == -signal.SIGXCPU or ended - started >= TIME_LIMIT_S:
                # its CPU limit (the exit status can read as the kill when the death was not
                # yet reaped): a run that died after the time limit counts as timed out
                return _failure(TIMEOUT_MESSAGE, started, ended)
            log.warning(
                "sandbox: worker %s failed (%s, exit %s); killed",
                worker.process.pid,
                exc,
                worker.process.returncode,
            )
            if worker.process.returncode in FAULTS:
                return None
            return _failure(CRASH_MESSAGE, started, loop.time())
        except BaseException:
            await self._discard(worker)  # cancelled mid-run: the worker's state is unknown
            raise
        spent = result["error"] == OUT_OF_MEMORY_MESSAGE
        if spent or worker.runs >= self._max_runs or self._closed:
            await self._discard(worker)
        else:
            self._idle.append(worker)
        return result

    def _take_idle(self) -> _Worker | None:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                return worker
            self._all.discard(worker)
        return None

    async def _start(self) -> _Worker:
        worker = await _Worker.start()
        self._all.add(worker)
        return worker

    async def _discard(self, worker: _Worker) -> None:
        self._all.discard(worker)
        await worker.kill()

    async def close(self) -> None:
        self._closed = True
        workers, self._idle = list(self._all), []
        self._all.clear()
        await asyncio.gather(*(worker.kill() for worker in workers))


def _failure(message: str, started: float, ended: float) -> Result:
    return {"output": "", "error": message, "executionTimeMs": round((ended - started) * 1000)}
