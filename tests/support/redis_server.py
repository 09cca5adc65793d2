"""A private ``redis-server`` for tests that break Redis on purpose, never the machine's
shared one: a free loopback port, its own directory and log file, nothing saved.

    async with RedisServer() as redis:
        client = Redis.from_url(redis.url())      # db 1 unless told
        await redis.stop(); await redis.start()   # a restart on the same port: data gone
        await redis.kill()                        # a crash (SIGKILL); start() again later
        await redis.pause(); await redis.resume() # a stall (SIGSTOP/SIGCONT): connections
                                                  # stay open, nothing answers meanwhile

The server is killed when the ``async with`` block ends, however it ends, and by the
kernel if the test process itself dies (``PR_SET_PDEATHSIG``; it fires when the thread
that started the server ends, so start it from the event loop's thread, never from
``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from tests.support import resp
from tests.support.ports import LOOPBACK, free_port

REDIS_SERVER = shutil.which("redis-server") or "redis-server"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
#: how often a new free port is tried when another process took the one picked
BIND_ATTEMPTS = 5
POLL_S = 0.01
LOG_TAIL_BYTES = 4000
PR_SET_PDEATHSIG = 1


class RedisServer:
    """One ``redis-server`` process, restartable on the port it first got.

    ``cluster=True`` makes it a Redis Cluster node (``--cluster-enabled yes``, its node
    table in ``nodes-<port>.conf`` in the directory, kept across restarts so a restarted
    node rejoins with its slots and no keys). Its cluster bus gets a free port of its own
    (``--cluster-port``) instead of the default port + 10000, which may be taken or
    beyond 65535.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        port: int | None = None,
        cluster: bool = False,
        cluster_node_timeout_ms: int = 5000,
    ) -> None:
        self._owns_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="redis-")) if directory is None else directory
        self._fixed_port = port is not None
        self._port = port
        self._bus_port: int | None = None
        self._cluster = cluster
        self._cluster_node_timeout_ms = cluster_node_timeout_ms
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    async def __aenter__(self) -> RedisServer:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has not been started yet")
        return self._port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pid(self) -> int:
        return self._running_process().pid

    @property
    def log_path(self) -> Path:
        return self.directory / f"redis-{self.port}.log"

    def url(self, db: int = 1) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    async def start(self) -> None:
        """Start the server and wait until it answers; on the port of the first start
        when there was one (a restart)."""
        if self.running:
            raise RuntimeError("the server is already running")
        await self._reap()  # one that exited by itself
        self.directory.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else BIND_ATTEMPTS
        for attempt in range(attempts):
            if self._port is None:
                self._port = free_port()
            if self._cluster and self._bus_port is None:
                self._bus_port = free_port()
            log_start = self._log_size()
            self._process = self._spawn()
            try:
                await self._wait_ready(log_start)
                self._fixed_port = True  # restarts keep this port
                return
            except _PortTaken:
                await self._reap()
                if attempt + 1 == attempts:
                    raise RuntimeError(f"port {self._port} is taken: {self._log_tail()}") from None
                self._port = None
                self._bus_port = None
            except BaseException:
                await self.kill()
                raise

    async def stop(self) -> None:
        """Shut the server down (SIGTERM; SIGKILL if it does not exit in time): every
        connection is closed and, since nothing is saved, every key is gone."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            if self._paused:
                await self.resume()
            process.terminate()
            if not await _exited(process, STOP_TIMEOUT_S):
                process.kill()
        await self._reap()

    async def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would; paused or not."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        await self._reap()

    async def pause(self) -> None:
        """Freeze the process (SIGSTOP): its connections stay open and new ones are still
        accepted by the kernel, but nothing is read or answered until ``resume()``."""
        process = self._running_process()
        process.send_signal(signal.SIGSTOP)
        self._paused = True
        await _wait_for(lambda: _process_state(process.pid) == "T", "stopped")

    async def resume(self) -> None:
        process = self._running_process()
        process.send_signal(signal.SIGCONT)
        self._paused = False
        await _wait_for(lambda: _process_state(process.pid) != "T", "continued")

    async def close(self) -> None:
        """Kill the server and remove the directory when it was made here."""
        await self.kill()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _running_process(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("the server is not running")
        return self._process

    def _arguments(self) -> list[str]:
        arguments = [
            REDIS_SERVER,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.log_path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        if self._cluster:
            arguments += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{self.port}.conf",
                "--cluster-port",
                str(self._bus_port),
                "--cluster-node-timeout",
                str(self._cluster_node_timeout_ms),
            ]
        return arguments

    def _spawn(self) -> subprocess.Popen[bytes]:
        # configuration errors are printed before the log file is opened: same file
        with self.log_path.open("ab") as early_output:
            return subprocess.Popen(
                self._arguments(),
                stdin=subprocess.DEVNULL,
                stdout=early_output,
                stderr=early_output,
                preexec_fn=_die_with_parent(),
                start_new_session=True,  # a ^C reaches the test run, which stops us
            )

    async def _wait_ready(self, log_start: int) -> None:
        """Until INFO answers with this process's id (a server already on the port
        that answers PING is someone else's)."""
        process = self._running_process()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if b"Address already in use" in self._log_since(log_start):
                    raise _PortTaken
                raise RuntimeError(f"redis-server exited at start: {self._log_tail()}")
            with contextlib.suppress(OSError, TimeoutError, resp.RespError):
                info = await resp.command(self.host, self.port, "INFO", "server", within_s=0.5)
                if isinstance(info, bytes) and f"process_id:{process.pid}\r".encode() in info:
                    return
            await asyncio.sleep(POLL_S)
        raise RuntimeError(
            f"redis-server did not answer in {START_TIMEOUT_S} s: {self._log_tail()}"
        )

    async def _reap(self) -> None:
        process = self._process
        if process is not None:
            await _exited(process, STOP_TIMEOUT_S)
            process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None
        self._paused = False

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _log_since(self, offset: int) -> bytes:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read()
        except FileNotFoundError:
            return b""

    def _log_tail(self) -> str:
        return self._log_since(max(0, self._log_size() - LOG_TAIL_BYTES)).decode(errors="replace")


class _PortTaken(Exception):
    pass


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to SIGKILL the child when its parent ends.
    libc is looked up here, before the fork, so the child only makes the call."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def request() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return request


async def _exited(process: subprocess.Popen[bytes], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while process.poll() is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


def _process_state(pid: int) -> str:
    """The one-letter state of ``/proc/<pid>/stat`` (``T``: stopped by a signal)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "X"
    return stat.rpartition(")")[2].split()[0]


async def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while not condition():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"redis-server was not {what} within {STOP_TIMEOUT_S} s")
        await asyncio.sleep(POLL_S)
