"""``arinova serve``: one listening socket, ``--workers N`` server processes (one by
default: it too runs under this supervisor, so that SIGHUP can replace it).

The parent binds the port and migrates the database once, then keeps N worker
processes (multiprocessing *spawn*) serving the inherited socket; the kernel spreads
connections between them. A worker that dies unexpectedly is restarted with back-off.
SIGTERM or SIGINT to the parent is forwarded to the workers as SIGTERM (each shuts
down gracefully); the parent waits for them, then kills any that overstay.
With ``METRICS_PORT`` the parent serves the workers' metrics, summed
(``arinova.metrics.multiprocess``).

SIGHUP replaces the workers one at a time (a rolling restart): a new worker is started
on the same socket and, once it says it serves, the old one is told to drain for a
restart (``arinova.server.drain``); the next slot follows once the old worker exited.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from arinova.metrics.multiprocess import WorkerMetrics
from arinova.settings import Settings

log = logging.getLogger("arinova.server")

#: first restart delay, doubled for each quick failure up to ``MAX_BACKOFF_S``
BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
#: a worker that ran this long is healthy again: its back-off starts over
HEALTHY_AFTER_S = 30.0
#: this many quick failures in a row and the supervisor gives up
MAX_QUICK_FAILURES = 5
#: what a worker may take beyond the graceful shutdown timeout before it is killed
KILL_GRACE_S = 5.0
#: how long a restart waits for a new worker to serve before it gives the slot up
READY_TIMEOUT_S = 60.0
#: what a worker sends the supervisor once it serves
READY = b"ready"


class MetricsUnavailable(Exception):
    """The metrics port cannot be bound (no worker was started)."""


@dataclass(slots=True)
class _Slot:
    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker if the supervisor dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def worker_main(settings: Settings, sock: socket.socket, ready: Connection) -> None:
    """Entry point of a worker process; ``ready`` hears ``READY`` once it serves."""
    import uvloop

    from arinova.logs import configure_logging
    from arinova.server.runner import Server

    # Ctrl+C in a terminal reaches the supervisor only; it forwards a single SIGTERM
    os.setpgrp()
    _die_with_parent()
    configure_logging(settings.effective_log_level)
    uvloop.run(Server(settings).serve(sock, ready=functools.partial(_say_ready, ready)))


def _say_ready(ready: Connection) -> None:
    """Only a restart listens (the pipe of a worker started otherwise is closed)."""
    with contextlib.suppress(OSError):
        ready.send_bytes(READY)
    ready.close()


class Supervisor:
    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._stop_signal: int | None = None
        self._restart_requested = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._metrics: WorkerMetrics | None = None

    def run(self) -> int:
        """Supervise until a stop signal; the exit status of ``arinova serve``."""
        with ExitStack() as stack:
            host, port = self.settings.metrics_host, self.settings.metrics_port
            if port is not None:
                try:
                    self._metrics = WorkerMetrics(host, port)
                except OSError as exc:
                    raise MetricsUnavailable(
                        f"cannot serve metrics on {host}:{port}: {exc.strerror}"
                    ) from exc
                stack.callback(self._metrics.close)
                stack.enter_context(self._metrics.inherited())
                self.settings = self.settings.replace(metrics_dir=self._metrics.directory)
            return self._supervise()

    def _supervise(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_restart_signal)
        previous_wakeup = signal.set_wakeup_fd(self._wake_w.fileno())
        try:
            for slot in self._slots:
                self._spawn(slot)
            status = self._watch()
            self._stop_workers()
            return status
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._wake_r.close()
            self._wake_w.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _on_restart_signal(self, signum: int, frame: FrameType | None) -> None:
        self._restart_requested = True

    def _spawn(self, slot: _Slot) -> None:
        process, ready = self._start_worker(slot)
        ready.close()
        slot.process = process
        slot.started_at = time.monotonic()
        slot.restart_at = None
        log.info("worker %d started (pid %s)", slot.index, process.pid)

    def _start_worker(self, slot: _Slot) -> tuple[BaseProcess, Connection]:
        """A started worker and the end of the pipe it says ``READY`` on."""
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main,
            args=(self.settings, self.sock, writer),
            name=f"arinova-worker-{slot.index}",
        )
        try:
            process.start()
        finally:
            writer.close()
        return process, reader

    def _watch(self) -> int:
        while self._stop_signal is None:
            now = time.monotonic()
            timeouts = [s.restart_at - now for s in self._slots if s.restart_at is not None]
            sentinels: list[object] = [self._wake_r]
            sentinels += [s.process.sentinel for s in self._slots if s.process is not None]
            wait(sentinels, timeout=max(0.0, min(timeouts)) if timeouts else None)  # type: ignore[arg-type]
            self._drain_wakeups()
            if self._stop_signal is not None:
                break
            if self._restart_requested:
                self._restart_requested = False
                self._rolling_restart()
                continue
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is not None and not slot.process.is_alive():
                    if not self._schedule_restart(slot, now):
                        return 1
                elif slot.restart_at is not None and slot.restart_at <= now:
                    self._spawn(slot)
        log.info("signal %d: stopping %d worker(s)", self._stop_signal, len(self._slots))
        return 0

    # -- SIGHUP --------------------------------------------------------------------------
    def _rolling_restart(self) -> None:
        """Replace each worker in turn; a stop signal ends the restart where it is."""
        log.info("SIGHUP: replacing %d worker(s) one at a time", len(self._slots))
        for slot in self._slots:
            if self._stop_signal is not None:
                return
            self._replace(slot)

    def _replace(self, slot: _Slot) -> None:
        old = slot.process
        process, ready = self._start_worker(slot)
        try:
            serving = self._wait_ready(process, ready)
        finally:
            ready.close()
        if not serving:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
            self._reap(process)
            log.error("worker %d: its replacement did not start; keeping it", slot.index)
            return
        slot.process = process
        slot.started_at = time.monotonic()
        slot.restart_at = None
        if old is None:  # the slot was waiting for a restart after a failure
            log.info("worker %d replaced: pid %s started", slot.index, process.pid)
            return
        from arinova.server.drain import RESTART_SIGNAL

        old_pid = old.pid
        if old.is_alive() and old_pid is not None:
            os.kill(old_pid, RESTART_SIGNAL)
        drained = self._reap(old)
        log.info(
            "worker %d replaced: pid %s -> pid %s (old one %s)",
            slot.index,
            old_pid,
            process.pid,
            "drained" if drained else "killed after SHUTDOWN_TIMEOUT",
        )

    def _wait_ready(self, process: BaseProcess, ready: Connection) -> bool:
        """True once ``process`` serves; False when it exits, overstays
        ``READY_TIMEOUT_S`` or a stop signal comes first."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self._stop_signal is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait([ready, process.sentinel, self._wake_r], timeout=left)  # type: ignore[list-item]
            self._drain_wakeups()
            if ready.poll():
                try:
                    return ready.recv_bytes() == READY
                except EOFError:  # it exited before it served
                    return False
            if not process.is_alive():
                return False
        return False

    def _reap(self, process: BaseProcess) -> bool:
        """Wait for a worker told to stop; kill it past the shutdown timeout. True when it
        exited by itself."""
        process.join(self.settings.shutdown_timeout_s + KILL_GRACE_S)
        exited = not process.is_alive()
        if not exited:
            log.error("worker pid %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
        process.close()
        return exited

    def _schedule_restart(self, slot: _Slot, now: float) -> bool:
        assert slot.process is not None
        code = slot.process.exitcode
        if self._metrics is not None and slot.process.pid is not None:
            self._metrics.worker_gone(slot.process.pid)
        slot.process.close()
        slot.process = None
        if now - slot.started_at >= HEALTHY_AFTER_S:
            slot.quick_failures = 0
        slot.quick_failures += 1
        if slot.quick_failures > MAX_QUICK_FAILURES:
            log.error("worker %d keeps failing (last exit %s); giving up", slot.index, code)
            return False
        delay = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** (slot.quick_failures - 1))
        log.warning("worker %d exited (%s); restarting in %.1f s", slot.index, code, delay)
        slot.restart_at = now + delay
        return True

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _stop_workers(self) -> None:
        alive = [s.process for s in self._slots if s.process is not None]
        for process in alive:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout_s + KILL_GRACE_S
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
            process.close()
        for slot in self._slots:
            slot.process = None
