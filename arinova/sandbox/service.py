"""``state.sandbox``: the per-user limiter and the worker pool behind one object.

A user's runs are the pool's owner: one runs at a time and the users' waiting runs take
turns (``arinova.sandbox.fair``).
"""

from __future__ import annotations

from arinova.ratelimit.sandbox import SlidingWindowLimiter
from arinova.sandbox.engine import Result
from arinova.sandbox.fair import OwnerQueueFull, QueueFull, SandboxBusy, WaitedTooLong
from arinova.sandbox.pool import WorkerPool

__all__ = ["OwnerQueueFull", "QueueFull", "Result", "Sandbox", "SandboxBusy", "WaitedTooLong"]


class Sandbox:
    def __init__(self, pool: WorkerPool | None = None) -> None:
        self.limiter = SlidingWindowLimiter(limit=10, window_s=60.0)
        self.pool = pool or WorkerPool()

    def allow(self, user_id: str) -> bool:
        return self.limiter.allow(user_id)

    async def execute(self, code: str, user_id: str) -> Result:
        """Run ``code`` for ``user_id``, after their previous run; raises ``SandboxBusy``
        when the run is refused or waited too long for a worker (the run then does not
        count against the user's limit)."""
        try:
            return await self.pool.run(code, owner=user_id)
        except SandboxBusy:
            self.limiter.refund(user_id)
            raise

    async def close(self) -> None:
        await self.pool.close()
