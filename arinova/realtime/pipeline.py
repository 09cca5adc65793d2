"""The reply pipeline (websocket.md §3-§6): a user message in, an agent reply streamed to
every socket of the user, stored when it ends.

One reply is active per conversation (the coordinator's lock, quirk Q07) and later
messages wait in its bounded FIFO. Every path that starts a reply ends it: an exception is
logged and becomes an error reply, and the next queued message starts (quirks Q11, Q44).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING

from arinova.db.messages_seq import insert_message, lock_conversation
from arinova.db.pool import Database
from arinova.db.queries import realtime as q
from arinova.js import well_formed
from arinova.realtime import events
from arinova.realtime.coordinator import FULL, QUEUED, QueuedReply, RunningReply
from arinova.realtime.hub import AgentTask
from arinova.realtime.reply_store import ReplyStore
from arinova.sanitize import sanitize_content

if TYPE_CHECKING:
    from arinova.clock import Clock
    from arinova.metrics import Metrics
    from arinova.realtime.coordinator import Coordinator
    from arinova.realtime.hub import Hub
    from arinova.realtime.push_trigger import PushTrigger
    from arinova.realtime.tasks import Background
    from arinova.settings import RealtimeSettings

#: stored and sent when finishing a reply fails for a reason of ours
INTERNAL_ERROR = "Internal server error"


class Pipeline:
    def __init__(
        self,
        db: Database,
        hub: Hub,
        coordinator: Coordinator,
        push: PushTrigger,
        tasks: Background,
        config: RealtimeSettings,
        clock: Clock,
        log: logging.Logger,
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._hub = hub
        self._coordinator = coordinator
        self._push = push
        self._tasks = tasks
        self._config = config
        self._clock = clock
        self._log = log
        self._store = ReplyStore(db, config, log)
        self._chunks = metrics.chunks_relayed

    # -- entry points --------------------------------------------------------------------
    async def send_message(self, user_id: str, conversation_id: str, content: str) -> None:
        """``send_message`` from a socket (rate limit already passed)."""
        content = sanitize_content(well_formed(content))
        async with self._db.acquire() as conn, conn.transaction():
            conv = await lock_conversation(conn, conversation_id, owner_id=user_id)
            if conv is None:
                return  # not the caller's, or gone: ignored
            await insert_message(conn, conversation_id, "user", content, "completed", bump=True)
        if conv["type"] == "group" or conv["agent_id"] is None:
            return  # stored (decision Q48); groups get no agent reply
        await self.submit(QueuedReply(user_id, conversation_id, content))

    async def submit(self, item: QueuedReply) -> None:
        """Start the reply or queue it behind the conversation's active one (the caller
        awaits, so one socket's messages keep their order)."""
        start = await self._coordinator.claim(item)
        if start == FULL:
            # The original's queue had no bound (websocket.md §6); ours has. The message is
            # stored already (§3 step 2, or by the upload), so it is answered the way an
            # offline agent's message is (§3 step 5): an error reply row, stream_start and
            # stream_error, which the web app shows as an error bubble.
            self._log.warning(
                "conversation %s: reply queue full, a message is answered with an error",
                item.conversation_id,
            )
            error = events.REPLY_QUEUE_FULL
            await self._error_reply(item, error, error)
        elif start != QUEUED:
            assert isinstance(start, QueuedReply)
            self._tasks.spawn(self._run(start))

    def run_reply(self, item: QueuedReply) -> None:
        """Another process gave this one (the agent's) the conversation's reply."""
        self._tasks.spawn(self._run(item))

    def cancel(self, user_id: str, message_id: str) -> None:
        """``cancel_stream``: only the caller's own reply (quirk Q23), wherever it runs."""
        if not self.cancel_reply(user_id, message_id):
            self._coordinator.cancel_elsewhere(user_id, message_id)

    def cancel_reply(self, user_id: str, message_id: str) -> bool:
        task = self._hub.tasks.get(message_id)
        if task is not None and task.user_id == user_id:
            self.fail(task, events.STREAM_CANCELLED, cancelled=True)
            return True
        return False

    # -- one reply -----------------------------------------------------------------------
    async def _run(self, item: QueuedReply) -> None:
        """Runs with the conversation marked active; always releases it (or hands it to a
        task or a process that will)."""
        handed_over = False
        try:
            handed_over = await self._start(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.exception("conversation %s: starting a reply failed", item.conversation_id)
        finally:
            if not handed_over:
                await self._release(item.user_id, item.conversation_id)

    async def _start(self, item: QueuedReply) -> bool:
        """True when a task (or the agent's process) now owns the conversation's mark."""
        agent = await self._db.fetchrow(q.CONVERSATION_AGENT.sql, item.conversation_id)
        if agent is None:
            return False
        agent_id, name = agent["id"], agent["name"]
        if self._hub.connected_agent(agent_id) is None:
            elsewhere = await self._coordinator.locate_agent(agent_id)
            if elsewhere is not None and await self._coordinator.hand_over(item, elsewhere):
                return True
            if self._hub.connected_agent(agent_id) is None:
                # not connected, or its process did not take the reply
                await self._offline_reply(item, name)
                return False
        row = await self._insert_reply(item.conversation_id, "", "streaming", bump=True)
        if row is None:
            return False
        message_id, seq = row
        emit = self._coordinator.emit
        try:
            task = self._new_task(message_id, seq, agent_id, name, item)
        except Exception:
            self._log.exception("message %s: setting up the reply failed", message_id)
            await self._store_internal_error(message_id)
            emit(item.user_id, events.stream_start(item.conversation_id, message_id, seq))
            emit(
                item.user_id,
                events.stream_error(item.conversation_id, message_id, seq, INTERNAL_ERROR),
            )
            return False
        self._hub.tasks[message_id] = task
        # from here on the task owns the active mark: whatever happens, it ends the reply
        try:
            await self._coordinator.reply_started(
                RunningReply(item.user_id, item.conversation_id, message_id, seq)
            )
            emit(item.user_id, events.stream_start(item.conversation_id, message_id, seq))
            prompt = agent["system_prompt"]
            content = item.content
            if prompt:
                content = f"[System Prompt]\n{prompt}\n\n[User Message]\n{content}"
            socket = self._hub.connected_agent(agent_id)
            frame = events.task(message_id, item.conversation_id, content)
            if socket is None or not socket.send_frame(frame):
                self.fail(task, events.AGENT_NOT_CONNECTED)
        except Exception:
            self._log.exception("message %s: dispatching the task failed", message_id)
            self.fail(task, INTERNAL_ERROR)
        return True

    def _new_task(
        self, message_id: str, seq: int, agent_id: str, name: str, item: QueuedReply
    ) -> AgentTask:
        return AgentTask(
            message_id,
            seq,
            agent_id,
            name,
            item.user_id,
            item.conversation_id,
            partial(self._coordinator.stream_text, message_id),
            self._clock.monotonic(),
        )

    async def _insert_reply(
        self, conversation_id: str, content: str, status: str, *, bump: bool
    ) -> tuple[str, int] | None:
        async with self._db.acquire() as conn, conn.transaction():
            if await lock_conversation(conn, conversation_id) is None:
                return None
            return await insert_message(conn, conversation_id, "agent", content, status, bump=bump)

    async def _offline_reply(self, item: QueuedReply, name: str) -> None:
        await self._error_reply(
            item, events.offline_agent_row(name), events.offline_agent_error(name)
        )

    async def _error_reply(self, item: QueuedReply, content: str, error: str) -> None:
        """A reply that is an error from the start: stored with ``content``, streamed as
        ``stream_start`` and ``stream_error`` with ``error``."""
        row = await self._insert_reply(item.conversation_id, content, "error", bump=False)
        if row is None:
            return
        message_id, seq = row
        emit = self._coordinator.emit
        emit(item.user_id, events.stream_start(item.conversation_id, message_id, seq))
        emit(item.user_id, events.stream_error(item.conversation_id, message_id, seq, error))

    async def _release(self, user_id: str, conversation_id: str, message_id: str = "") -> None:
        """The active reply ended: start the next queued one, or free the conversation."""
        following = await self._coordinator.release(user_id, conversation_id, message_id)
        if following is not None:
            self._tasks.spawn(self._run(following))

    async def fail_orphan(self, reply: RunningReply, error: str) -> None:
        """A reply whose process died: stored as an error (if still streaming), the user
        told, its conversation's queue drained here."""
        row = await self._db.fetchrow(q.FAIL_STREAMING.sql, reply.message_id, error)
        if row is not None:
            self._coordinator.emit(
                reply.user_id,
                events.stream_error(reply.conversation_id, reply.message_id, reply.seq, error),
            )
        await self._release(reply.user_id, reply.conversation_id, reply.message_id)

    # -- agent events (synchronous: called from the agent socket's frame handler) -------
    def agent_event(self, agent_id: str, kind: str, task_id: str, value: str) -> bool:
        """An agent's ``agent_chunk`` / ``agent_complete`` / ``agent_error`` (``value``:
        its chunk, content or error), from its socket here or forwarded by the process
        holding its socket. False when the task does not run here (unknown, finished, or
        another process's); a task of another agent is ignored (websocket.md §2.2 item 6)."""
        task = self._hub.tasks.get(task_id)
        if task is None:
            return False
        if task.agent_id == agent_id:
            if kind == "agent_chunk":
                self.chunk(task, value)
            elif kind == "agent_complete":
                self.complete(task, value)
            else:
                self.fail(task, value)
        return True

    def chunk(self, task: AgentTask, chunk: str) -> None:
        delta = task.take_chunk(chunk)
        if delta is None:
            return
        # stream_chunk events are never queued offline (quirk Q15)
        self._coordinator.emit(
            task.user_id,
            events.stream_chunk(task.conversation_id, task.id, task.seq, delta),
            offline=False,
        )
        self._chunks.inc()
        task.cache.update(delta)

    def complete(self, task: AgentTask, content: str) -> None:
        if not self._end(task):
            return
        self._tasks.spawn(self._finish(task, content, "completed"))

    def fail(self, task: AgentTask, error: str, *, cancelled: bool = False) -> None:
        if not self._end(task):
            return
        if cancelled:
            # decision Q32: status cancelled, the text streamed so far kept
            self._tasks.spawn(self._finish(task, task.text or error, "cancelled", error))
        else:
            self._tasks.spawn(self._finish(task, error, "error", error))

    def _end(self, task: AgentTask) -> bool:
        """The task takes no more events; readers keep seeing its text until it is stored
        (``_finish``). False when it had already ended."""
        if self._hub.tasks.pop(task.id, None) is None:
            return False
        self._hub.ending[task.id] = task
        return True

    def fail_agent_tasks(self, agent_id: str, error: str) -> None:
        for task in self._hub.tasks_of_agent(agent_id):
            self.fail(task, error)

    def fail_idle_tasks(self, now: float) -> None:
        idle = self._config.task_idle_timeout_s
        for task in list(self._hub.tasks.values()):
            if now - task.active_at(now) >= idle:
                self.fail(task, f"Task timed out (idle for {idle:g}s)")

    async def _finish(
        self, task: AgentTask, content: str, status: str, error: str | None = None
    ) -> None:
        conversation_id = task.conversation_id
        emit = self._coordinator.emit
        try:
            try:
                content = well_formed(content)
                # the reply stays readable (``Hub.ending``, its stream text) and holds its
                # conversation while PostgreSQL is away, for a bounded window
                stored = await self._store.finish(task.id, content, status)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("message %s: storing the reply's end failed", task.id)
                stored = False
            if not stored:
                status, error = "error", INTERNAL_ERROR
                await self._store_internal_error(task.id)
            if status == "completed":
                emit(task.user_id, events.stream_end(conversation_id, task.id, task.seq))
                self._push.reply_done(task, content)
            else:
                assert error is not None
                emit(task.user_id, events.stream_error(conversation_id, task.id, task.seq, error))
        finally:
            self._hub.ending.pop(task.id, None)
            task.cache.finish()
            await self._release(task.user_id, conversation_id, task.id)

    async def _store_internal_error(self, message_id: str) -> None:
        await self._store.mark_failed(message_id, INTERNAL_ERROR)
