"""The metrics of the workers of one ``arinova serve``, summed by the supervisor.

The supervisor makes a directory for the run and names it in ``PROMETHEUS_MULTIPROC_DIR``
before it starts any worker, so that every worker's prometheus-client writes its values
to files of its own there (the variable is read when the library is imported: a worker
inherits it from its start). The supervisor serves the sum of the files on the metrics
port, drops a dead worker's gauges (``mark_process_dead``; its counters stay in the sums)
and removes the directory when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from arinova.metrics.exporter import Exporter

ENV = "PROMETHEUS_MULTIPROC_DIR"


class WorkerMetrics:
    def __init__(self, host: str, port: int) -> None:
        """Make the run's directory and serve it (raises ``OSError`` when the metrics
        address cannot be bound; nothing is left behind then)."""
        self.directory = Path(tempfile.mkdtemp(prefix="arinova-metrics-"))
        try:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(self.directory))  # type: ignore[no-untyped-call]
            self._exporter = Exporter(registry, host, port)
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    @property
    def port(self) -> int:
        return self._exporter.port

    @contextlib.contextmanager
    def inherited(self) -> Iterator[None]:
        """Workers started within the block write to the run's directory."""
        previous = os.environ.get(ENV)
        os.environ[ENV] = str(self.directory)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = previous

    def worker_gone(self, pid: int) -> None:
        mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._exporter.close()
        shutil.rmtree(self.directory, ignore_errors=True)
