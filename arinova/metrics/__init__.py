"""Prometheus metrics (``METRICS_PORT``): one ``Metrics`` per server process, built by the
composition root and handed to the services that count; served on a port of their own,
summed across the workers of one ``arinova serve``."""

from arinova.metrics.registry import Metrics
from arinova.metrics.tally import Count, Level, Observe, Tally

__all__ = ["Count", "Level", "Metrics", "Observe", "Tally"]
