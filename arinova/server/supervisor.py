"""``--workers N``: one listening socket, N server processes.

The parent binds the port and migrates the database once, then keeps N worker
processes (multiprocessing *spawn*) serving the inherited socket; the kernel spreads
connections between them. A worker that dies unexpectedly is restarted with back-off.
SIGTERM or SIGINT to the parent is forwarded to the workers as SIGTERM (each shuts
down gracefully); the parent waits for them, then kills any that overstay.
With ``METRICS_PORT`` the parent serves the workers' metrics, summed
(``arinova.metrics.multiprocess``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.connection import wait
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


def worker_main(settings: Settings, sock: socket.socket) -> None:
    """Entry point of a worker process."""
    import uvloop

    from arinova.logs import configure_logging
    from arinova.server.runner import Server

    # Ctrl+C in a terminal reaches the supervisor only; it forwards a single SIGTERM
    os.setpgrp()
    _die_with_parent()
    configure_logging(settings.effective_log_level)
    uvloop.run(Server(settings).serve(sock))


class Supervisor:
    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._stop_signal: int | None = None
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

    def _spawn(self, slot: _Slot) -> None:
        process = self._context.Process(
            target=worker_main,
            args=(self.settings, self.sock),
            name=f"arinova-worker-{slot.index}",
        )
        process.start()
        slot.process = process
        slot.started_at = time.monotonic()
        slot.restart_at = None
        log.info("worker %d started (pid %s)", slot.index, process.pid)

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
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is not None and not slot.process.is_alive():
                    if not self._schedule_restart(slot, now):
                        return 1
                elif slot.restart_at is not None and slot.restart_at <= now:
                    self._spawn(slot)
        log.info("signal %d: stopping %d worker(s)", self._stop_signal, len(self._slots))
        return 0

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
