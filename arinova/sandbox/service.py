"""``state.sandbox``: the per-user limiter and the worker pool behind one object."""

from __future__ import annotations

from arinova.ratelimit.sandbox import SlidingWindowLimiter
from arinova.sandbox.engine import Result
from arinova.sandbox.pool import SandboxBusy, WorkerPool

__all__ = ["Result", "Sandbox", "SandboxBusy"]


class Sandbox:
    def __init__(self, pool: WorkerPool | None = None) -> None:
        self.limiter = SlidingWindowLimiter(limit=10, window_s=60.0)
        self.pool = pool or WorkerPool()

    def allow(self, user_id: str) -> bool:
        return self.limiter.allow(user_id)

    async def execute(self, code: str) -> Result:
        """Run ``code``; raises ``SandboxBusy`` when too many runs are queued."""
        return await self.pool.run(code)

    async def close(self) -> None:
        await self.pool.close()
