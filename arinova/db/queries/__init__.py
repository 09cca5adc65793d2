"""Every SQL statement of the server, as a named ``Query`` constant in this package.

Areas define their statements in a module here (``agents.py``, ``sessions.py`` …) and
execute them through ``Query.sql``. ``all_queries()`` finds them all, so a test can
prepare each one against the migrated schema: a wrong column or table fails CI.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str

    def __str__(self) -> str:
        return self.sql


def all_queries() -> list[Query]:
    found: dict[str, Query] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Query):
                if value.name in found and found[value.name] is not value:
                    raise ValueError(f"two queries are named {value.name!r}")
                found[value.name] = value
    return sorted(found.values(), key=lambda q: q.name)
