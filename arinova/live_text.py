"""The text of replies still streaming, for the readers of stored messages (the REST message
list, sync's missed messages): the process's own when it runs the reply (exactly what the
user's sockets were sent), else ``stream:<messageId>`` (websocket.md §9), one MGET for all.
A stream key that cannot be read, or is empty, leaves the stored text."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arinova.kv import keys

if TYPE_CHECKING:
    from arinova.kv import KV


async def fill_live_texts(
    messages: list[dict[str, Any]],
    local_text: Callable[[str], str | None],
    kv: KV,
    log: logging.Logger,
) -> None:
    elsewhere = []
    for message in messages:
        if message["status"] != "streaming":
            continue
        text = local_text(message["id"])
        if text is None:
            elsewhere.append(message)
        elif text:
            message["content"] = text
    if not elsewhere:
        return
    try:
        values = await kv.mget([keys.stream(m["id"]) for m in elsewhere])
    except Exception:
        log.warning("stream text unavailable; stored text kept", exc_info=True)
        return
    for message, value in zip(elsewhere, values, strict=True):
        if value:
            message["content"] = value.decode("utf-8", "replace")
