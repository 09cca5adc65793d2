"""The reply pipeline (websocket.md §3-§6): a user message in, an agent reply streamed to
every socket of the user, stored when it ends.

One reply is active per conversation; the busy check and the mark happen with no await
between them (quirk Q07), and later messages wait in a bounded FIFO. Every path that
starts a reply ends it: an exception is logged and becomes an error reply, and the next
queued message starts (quirks Q11, Q44).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arinova.db.messages_seq import insert_message, lock_conversation
from arinova.db.queries import realtime as q
from arinova.js import well_formed
from arinova.realtime import events
from arinova.realtime.hub import AgentTask
from arinova.realtime.streamcache import StreamCache
from arinova.sanitize import sanitize_content

if TYPE_CHECKING:
    from arinova.realtime.service import RealtimeService

#: stored and sent when finishing a reply fails for a reason of ours
INTERNAL_ERROR = "Internal server error"


@dataclass(frozen=True, slots=True)
class QueuedReply:
    user_id: str
    conversation_id: str
    content: str


class Pipeline:
    def __init__(self, service: RealtimeService) -> None:
        self.service = service
        self.hub = service.hub
        #: conversation id -> replies waiting behind the active one
        self._queues: dict[str, deque[QueuedReply]] = {}

    # -- entry points --------------------------------------------------------------------
    async def send_message(self, user_id: str, conversation_id: str, content: str) -> None:
        """``send_message`` from a socket (rate limit already passed)."""
        content = sanitize_content(well_formed(content))
        db = self.service.state.db
        async with db.acquire() as conn, conn.transaction():
            conv = await lock_conversation(conn, conversation_id, owner_id=user_id)
            if conv is None:
                return  # not the caller's, or gone: ignored
            await insert_message(conn, conversation_id, "user", content, "completed", bump=True)
        if conv["type"] == "group" or conv["agent_id"] is None:
            return  # stored (decision Q48); groups get no agent reply
        await self.submit(QueuedReply(user_id, conversation_id, content))

    async def submit(self, item: QueuedReply) -> None:
        """Start the reply or queue it: in this process's memory, or with Redis across
        every process (the caller awaits, so one socket's messages keep their order)."""
        cluster = self.service.cluster
        if cluster is None:
            self.start_or_queue(item)
            return
        try:
            start = await cluster.claim(item)
        except Exception:
            self.service.log.warning(
                "conversation %s: shared reply mark unavailable; starting here",
                item.conversation_id,
                exc_info=True,
            )
            self.start_or_queue(item)
            return
        if start is False:
            self.service.log.warning(
                "conversation %s: reply queue full, a message gets no reply",
                item.conversation_id,
            )
        elif isinstance(start, QueuedReply):
            self.service.spawn(self._run(start))

    def run_handed_over(self, item: QueuedReply) -> None:
        """Another process gave this one (the agent's) the conversation's reply."""
        self.service.spawn(self._run(item))

    def start_or_queue(self, item: QueuedReply) -> None:
        """Start the reply now, or queue it behind the active one (no await in between)."""
        hub = self.hub
        if item.conversation_id in hub.active:
            queue = self._queues.setdefault(item.conversation_id, deque())
            if len(queue) >= self.service.config.max_queued_replies:
                self.service.log.warning(
                    "conversation %s: reply queue full, a message gets no reply",
                    item.conversation_id,
                )
                return
            queue.append(item)
            return
        hub.active[item.conversation_id] = item.user_id
        self.service.spawn(self._run(item))

    def cancel(self, user_id: str, message_id: str) -> None:
        """``cancel_stream``: only the caller's own reply (quirk Q23), wherever it runs."""
        if not self.cancel_local(user_id, message_id):
            cluster = self.service.cluster
            if cluster is not None:
                cluster.cancel(user_id, message_id)

    def cancel_local(self, user_id: str, message_id: str) -> bool:
        task = self.hub.tasks.get(message_id)
        if task is not None and task.user_id == user_id:
            self.fail(task, events.STREAM_CANCELLED, cancelled=True)
            return True
        return False

    # -- one reply -----------------------------------------------------------------------
    async def _run(self, item: QueuedReply) -> None:
        """Runs with the conversation marked active; always releases it (or hands it to a
        task that will)."""
        service = self.service
        handed_over = False
        try:
            handed_over = await self._start(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            service.log.exception("conversation %s: starting a reply failed", item.conversation_id)
        finally:
            if not handed_over:
                self._release(item.user_id, item.conversation_id)

    async def _start(self, item: QueuedReply) -> bool:
        """True when a task now owns the conversation's active mark."""
        service = self.service
        db = service.state.db
        agent = await db.fetchrow(q.CONVERSATION_AGENT.sql, item.conversation_id)
        if agent is None:
            return False
        agent_id, name = agent["id"], agent["name"]
        if service.hub.connected_agent(agent_id) is None:
            cluster = service.cluster
            elsewhere = None if cluster is None else await cluster.locate_agent(agent_id)
            if cluster is not None and elsewhere is not None:
                await cluster.hand_over(item, elsewhere)
                return True
            await self._offline_reply(item, name)
            return False
        row = await self._insert_reply(item.conversation_id, "", "streaming", bump=True)
        if row is None:
            return False
        message_id, seq = row
        try:
            task = self._new_task(message_id, seq, agent_id, name, item)
        except Exception:
            service.log.exception("message %s: setting up the reply failed", message_id)
            await self._store_internal_error(message_id)
            service.emit(item.user_id, events.stream_start(item.conversation_id, message_id, seq))
            service.emit(
                item.user_id,
                events.stream_error(item.conversation_id, message_id, seq, INTERNAL_ERROR),
            )
            return False
        self.hub.tasks[message_id] = task
        # from here on the task owns the active mark: whatever happens, it ends the reply
        try:
            if service.cluster is not None:
                await service.cluster.reply_started(
                    item.user_id, item.conversation_id, message_id, seq
                )
            service.emit(item.user_id, events.stream_start(item.conversation_id, message_id, seq))
            prompt = agent["system_prompt"]
            content = item.content
            if prompt:
                content = f"[System Prompt]\n{prompt}\n\n[User Message]\n{content}"
            socket = service.hub.connected_agent(agent_id)
            frame = events.task(message_id, item.conversation_id, content)
            if socket is None or not socket.send_frame(frame):
                self.fail(task, events.AGENT_NOT_CONNECTED)
        except Exception:
            service.log.exception("message %s: dispatching the task failed", message_id)
            self.fail(task, INTERNAL_ERROR)
        return True

    def _new_task(
        self, message_id: str, seq: int, agent_id: str, name: str, item: QueuedReply
    ) -> AgentTask:
        config = self.service.config
        cache = StreamCache(
            self.service.state.kv,
            message_id,
            config.stream_ttl_s,
            config.stream_cache_interval_s,
            self.service.spawn,
            self.service.log,
        )
        return AgentTask(
            message_id,
            seq,
            agent_id,
            name,
            item.user_id,
            item.conversation_id,
            cache,
            time.monotonic(),
        )

    async def _insert_reply(
        self, conversation_id: str, content: str, status: str, *, bump: bool
    ) -> tuple[str, int] | None:
        async with self.service.state.db.acquire() as conn, conn.transaction():
            if await lock_conversation(conn, conversation_id) is None:
                return None
            return await insert_message(conn, conversation_id, "agent", content, status, bump=bump)

    async def _offline_reply(self, item: QueuedReply, name: str) -> None:
        row = await self._insert_reply(
            item.conversation_id, events.offline_agent_row(name), "error", bump=False
        )
        if row is None:
            return
        message_id, seq = row
        emit = self.service.emit
        emit(item.user_id, events.stream_start(item.conversation_id, message_id, seq))
        emit(
            item.user_id,
            events.stream_error(
                item.conversation_id, message_id, seq, events.offline_agent_error(name)
            ),
        )

    def _release(self, user_id: str, conversation_id: str, message_id: str = "") -> None:
        """The active reply ended: start the next queued one, or clear the mark."""
        if self.service.cluster is not None:
            self.service.spawn(self._release_shared(user_id, conversation_id, message_id))
            return
        self._release_local(conversation_id)

    def _release_local(self, conversation_id: str) -> None:
        queue = self._queues.get(conversation_id)
        if queue:
            item = queue.popleft()
            if not queue:
                del self._queues[conversation_id]
            self.hub.active[conversation_id] = item.user_id
            self.service.spawn(self._run(item))
            return
        self._queues.pop(conversation_id, None)
        self.hub.active.pop(conversation_id, None)

    async def _release_shared(self, user_id: str, conversation_id: str, message_id: str) -> None:
        """Release the shared mark; a Redis blip must not leave the conversation marked
        by this live process, so failures are retried (then the mark outlives only this
        process)."""
        cluster = self.service.cluster
        assert cluster is not None
        if self.hub.active.get(conversation_id) == user_id:
            self._release_local(conversation_id)  # started here while Redis was away
            return
        for attempt in range(6):
            try:
                following = await cluster.release(user_id, conversation_id, message_id)
                break
            except Exception:
                if attempt == 5:
                    self.service.log.exception(
                        "conversation %s: releasing the reply mark failed", conversation_id
                    )
                    return
                await asyncio.sleep(0.1 * 2**attempt)
        if following is not None:
            self.service.spawn(self._run(following))

    async def fail_orphan(
        self, user_id: str, conversation_id: str, message_id: str, seq: int, error: str
    ) -> None:
        """A reply whose process died: stored as an error (if still streaming), the user
        told, its conversation's queue drained here."""
        service = self.service
        cluster = service.cluster
        assert cluster is not None
        row = await service.state.db.fetchrow(q.FAIL_STREAMING.sql, message_id, error)
        if row is not None:
            service.emit(user_id, events.stream_error(conversation_id, message_id, seq, error))
        await cluster.adopt(user_id, conversation_id)
        await self._release_shared(user_id, conversation_id, message_id)

    # -- agent events (synchronous: called from the agent socket's frame handler) -------
    def chunk(self, task: AgentTask, chunk: str) -> None:
        delta = task.take_chunk(chunk)
        if delta is None:
            return
        if delta:
            task.last_activity = time.monotonic()
        # stream_chunk events are never queued offline (quirk Q15)
        self.service.emit(
            task.user_id,
            events.stream_chunk(task.conversation_id, task.id, task.seq, delta),
            offline=False,
        )
        task.cache.update(task.text)

    def complete(self, task: AgentTask, content: str) -> None:
        if self.hub.tasks.pop(task.id, None) is None:
            return
        task.cache.finish()
        self.service.spawn(self._finish(task, content, "completed"))

    def fail(self, task: AgentTask, error: str, *, cancelled: bool = False) -> None:
        if self.hub.tasks.pop(task.id, None) is None:
            return
        task.cache.finish()
        if cancelled:
            # decision Q32: status cancelled, the text streamed so far kept
            self.service.spawn(self._finish(task, task.text or error, "cancelled", error))
        else:
            self.service.spawn(self._finish(task, error, "error", error))

    def fail_agent_tasks(self, agent_id: str, error: str) -> None:
        for task in self.hub.tasks_of_agent(agent_id):
            self.fail(task, error)

    async def _finish(
        self, task: AgentTask, content: str, status: str, error: str | None = None
    ) -> None:
        service = self.service
        conversation_id = task.conversation_id
        try:
            try:
                content = well_formed(content)
                await service.state.db.execute(q.FINISH_MESSAGE.sql, task.id, content, status)
            except asyncio.CancelledError:
                raise
            except Exception:
                service.log.exception("message %s: storing the reply's end failed", task.id)
                status, error = "error", INTERNAL_ERROR
                await self._store_internal_error(task.id)
            if status == "completed":
                service.emit(task.user_id, events.stream_end(conversation_id, task.id, task.seq))
                service.push_reply(task, content)
            else:
                assert error is not None
                service.emit(
                    task.user_id, events.stream_error(conversation_id, task.id, task.seq, error)
                )
        finally:
            self._release(task.user_id, conversation_id, task.id)

    async def _store_internal_error(self, message_id: str) -> None:
        try:
            await self.service.state.db.execute(
                q.FINISH_MESSAGE.sql, message_id, INTERNAL_ERROR, "error"
            )
        except Exception:
            self.service.log.exception(
                "message %s stays streaming until a sync repairs it", message_id
            )
