"""A registry served over HTTP on a port of its own (``METRICS_PORT``), from a thread:
never on the API's port, so it shares neither the API's paths nor its rate limit. Every
path answers with the metrics (``/metrics`` by convention)."""

from __future__ import annotations

from prometheus_client import start_http_server
from prometheus_client.registry import Collector


class Exporter:
    def __init__(self, registry: Collector, host: str, port: int) -> None:
        """Bind and serve (raises ``OSError`` when the address cannot be bound)."""
        self._httpd, self._thread = start_http_server(port, host, registry)

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
