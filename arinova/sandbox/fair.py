"""The worker slots of the sandbox pool, shared fairly between users.

* One run at a time per owner (a user): a second run of the same owner waits for the
  first to end, so one user never holds more than one worker.
* Waiting runs are served round-robin between owners, not in arrival order: when a slot
  frees, the owner served least recently goes first (an owner goes to the back of the
  round when a run of theirs starts and again when it ends). A user with many queued
  runs therefore delays another user's single run by at most one run per slot.
* Bounds, each refused at once with its own ``SandboxBusy``: ``max_waiting`` runs in all
  (``QueueFull``), ``max_waiting_per_owner`` runs of one owner (``OwnerQueueFull``); a run
  that waited ``max_wait_s`` for its slot gives up (``WaitedTooLong``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Hashable


class SandboxBusy(Exception):
    """The run was refused or gave up before it got a worker."""


class QueueFull(SandboxBusy):
    """Too many runs are already waiting for a worker."""


class OwnerQueueFull(SandboxBusy):
    """This owner already has as many runs waiting as allowed."""


class WaitedTooLong(SandboxBusy):
    """No slot became free for this run within the queue-wait bound."""


class FairSlots:
    def __init__(
        self,
        size: int,
        *,
        max_waiting: int,
        max_waiting_per_owner: int,
        max_wait_s: float,
    ) -> None:
        self._size = size
        self._free = size
        self._max_waiting = max_waiting
        self._max_waiting_per_owner = max_waiting_per_owner
        self._max_wait_s = max_wait_s
        self._waiting = 0
        self._running: set[Hashable] = set()
        #: owners with waiting runs, in the order they are to be served
        self._queues: OrderedDict[Hashable, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._size - self._free

    async def acquire(self, owner: Hashable) -> None:
        """Wait for a slot for ``owner``; pair every successful call with ``release``."""
        if self._free > 0 and owner not in self._running:
            # every waiting owner is running (else a free slot would have gone to them)
            self._grant(owner)
            return
        queue = self._queues.get(owner)
        if (len(queue) if queue else 0) >= self._max_waiting_per_owner:
            raise OwnerQueueFull
        if self._waiting >= self._max_waiting:
            raise QueueFull
        if queue is None:
            queue = self._queues[owner] = deque()
        granted = asyncio.get_running_loop().create_future()
        queue.append(granted)
        self._waiting += 1
        try:
            async with asyncio.timeout(self._max_wait_s):
                await granted
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                self.release(owner)  # the slot came as the wait ended: hand it on
            else:
                self._forget(owner, granted)
            if isinstance(exc, TimeoutError):
                raise WaitedTooLong from None
            raise

    def release(self, owner: Hashable) -> None:
        self._running.discard(owner)
        self._free += 1
        if owner in self._queues:
            self._queues.move_to_end(owner)
        self._dispatch()

    def _grant(self, owner: Hashable) -> None:
        self._free -= 1
        self._running.add(owner)

    def _dispatch(self) -> None:
        while self._free > 0:
            owner = next((o for o in self._queues if o not in self._running), None)
            if owner is None:
                return
            queue = self._queues[owner]
            granted = queue.popleft()
            self._waiting -= 1
            if queue:
                self._queues.move_to_end(owner)
            else:
                del self._queues[owner]
            if granted.done():  # cancelled, its waiter not yet resumed
                continue
            self._grant(owner)
            granted.set_result(None)

    def _forget(self, owner: Hashable, granted: asyncio.Future[None]) -> None:
        queue = self._queues.get(owner)
        if queue is None or granted not in queue:
            return  # already taken off by ``_dispatch``
        queue.remove(granted)
        self._waiting -= 1
        if not queue:
            del self._queues[owner]
