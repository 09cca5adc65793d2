"""``AppState``: the ready services of one server process, as the REST areas use them.

Built once by the composition root (``arinova.compose``); every field is open and usable
for the whole life of the object.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arinova.auth import Authenticator
    from arinova.db.pool import Database, QueryCounter
    from arinova.hooks import Realtime
    from arinova.kv import KV
    from arinova.metrics import Metrics
    from arinova.outbound import Outbound
    from arinova.push.service import PushService
    from arinova.sandbox.service import Sandbox
    from arinova.settings import Settings
    from arinova.storage import Storage


@dataclass(frozen=True, slots=True, eq=False)
class AppState:
    settings: Settings
    log: logging.Logger
    #: statements sent to PostgreSQL, counted only with ``settings.count_queries``
    queries: QueryCounter
    db: Database
    kv: KV
    auth: Authenticator
    storage: Storage
    #: the guarded HTTP client for agent probes (SSRF-safe)
    outbound: Outbound
    push: PushService
    sandbox: Sandbox
    #: the socket layer, as the REST layer sees it
    realtime: Realtime
    metrics: Metrics
