"""``sync`` (websocket.md §8) in a constant number of statements, whatever the number of
conversations: repair stuck replies (decision Q45: all the user's conversations, before the
summaries), the summaries, the missed messages, one MGET for texts still streaming. Then
the re-attach events of the replies in flight, wherever they run.

Decision Q19: the response and the re-attach go to the socket that asked, and only. A reply
in flight is re-attached (``stream_start`` and one ``stream_chunk`` with the text so far)
only in a conversation the sync's map does not name: where the map names it, the client
already shows the reply (its seq is covered) or gets it among the missed messages, and a
``stream_start`` would make the web app show it twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from arinova.db.pool import Database
from arinova.db.queries import realtime as q
from arinova.live_text import fill_live_texts
from arinova.realtime import events

if TYPE_CHECKING:
    from arinova.kv import KV
    from arinova.realtime.coordinator import Coordinator
    from arinova.realtime.hub import ClientSocket, Hub
    from arinova.settings import RealtimeSettings


class Sync:
    def __init__(
        self,
        db: Database,
        kv: KV,
        hub: Hub,
        coordinator: Coordinator,
        config: RealtimeSettings,
        log: logging.Logger,
    ) -> None:
        self._db = db
        self._kv = kv
        self._hub = hub
        self._coordinator = coordinator
        self._config = config
        self._log = log

    async def run(self, socket: ClientSocket, known: dict[str, int]) -> None:
        user_id = socket.user_id
        active = await self._coordinator.active_conversations(user_id)
        async with self._db.acquire() as conn:
            await conn.execute(q.REPAIR_STUCK_STREAMS.sql, user_id, active)
            rows = await conn.fetch(q.SYNC_SUMMARIES.sql, user_id)
            missed_rows = []
            if known and rows:
                missed_rows = await conn.fetch(
                    q.SYNC_MISSED.sql,
                    user_id,
                    list(known),
                    [str(seq) for seq in known.values()],  # text[]: asyncpg knows no int8[]
                    self._config.sync_missed_cap,
                )
        summaries = [_summary(row) for row in rows]
        missed = [_missed(row) for row in missed_rows]
        await fill_live_texts(missed, self._hub.streaming_text, self._kv, self._log)
        socket.send_frame(events.frame(events.sync_response(summaries, missed)))
        named = list(known)
        for event in self.reattach_events(user_id, named):
            socket.send_frame(events.frame(event))
        self._coordinator.reattach_elsewhere(user_id, socket.socket_id, named)

    def reattach_events(self, user_id: str, named: list[str]) -> list[str]:
        """``stream_start`` (and the text so far) of the user's replies run here, in the
        conversations a sync's map does not name."""
        skip = set(named)
        out: list[str] = []
        for task in self._hub.tasks_of_user(user_id):
            if task.conversation_id in skip:
                continue
            out.append(events.stream_start(task.conversation_id, task.id, task.seq))
            text = task.text
            if text:
                out.append(events.stream_chunk(task.conversation_id, task.id, task.seq, text))
        return out


def _summary(row: Any) -> dict[str, Any]:
    max_seq = row["max_seq"]
    last = None
    if row["role"] is not None:
        last = {
            "content": row["content"],
            "role": row["role"],
            "status": row["status"],
            "createdAt": row["created_at"],
        }
    return {
        "conversationId": row["id"],
        "unreadCount": max(0, max_seq - row["last_read_seq"]),
        "maxSeq": max_seq,
        "muted": row["muted"],
        "lastMessage": last,
    }


def _missed(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "conversationId": row["conversation_id"],
        "seq": row["seq"],
        "role": row["role"],
        "content": row["content"],
        "status": row["status"],
        "createdAt": row["created_at"],
    }
