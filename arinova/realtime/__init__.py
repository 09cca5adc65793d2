"""The realtime layer: ``/ws`` and ``/ws/agent`` (websocket.md), on the sockets of
``arinova.ws``."""
