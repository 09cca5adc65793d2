"""Running the server: one port for REST and sockets, in one or several processes."""

from arinova.server.runner import Server, StartupError

__all__ = ["Server", "StartupError"]
