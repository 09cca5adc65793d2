"""An embedded PostgreSQL (the ``pgserver`` package) for ``DATABASE_URL=embedded``.

With no ``DATABASE_URL`` the CLI uses it when ``pgserver`` is installed (the ``embedded``
extra), so ``arinova serve`` on a fresh machine needs no database server. Not for
production: pgserver runs PostgreSQL as a child of this process, on a Unix socket in the
data directory, and as root it creates a ``pgserver`` system user to run it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"
DATABASE_NAME = "arinova"

log = logging.getLogger("arinova.embedded")


def available() -> bool:
    return importlib.util.find_spec("pgserver") is not None


def start(data_dir: Path) -> tuple[Any, str]:
    """Start (or join) the PostgreSQL in ``data_dir``; returns the server handle (keep it
    referenced: it stops PostgreSQL when the process exits) and the database URL."""
    try:
        from pgserver import get_server  # type: ignore[attr-defined, unused-ignore]
    except ImportError as exc:
        raise RuntimeError(
            "DATABASE_URL=embedded needs the pgserver package: pip install 'arinova[embedded]'"
        ) from exc
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(str(data_dir), cleanup_mode="stop")
    url = str(server.get_uri(database=DATABASE_NAME))
    log.info("embedded PostgreSQL in %s", data_dir)
    return server, url
