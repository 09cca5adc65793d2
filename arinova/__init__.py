"""Arinova Chat backend: REST and WebSocket server on one port."""

__version__ = "0.1.0"
