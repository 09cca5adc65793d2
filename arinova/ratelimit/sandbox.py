"""Per-user sliding window for sandbox runs: 10 accepted runs per 60 s (rest.md §3.12).

Rejected calls are not counted, nor a run the worker pool then refused (``refund``), and
a run leaves the window 60 s after it was accepted (so this is a log of run times, not a
``FixedWindow`` count). The map is bounded (quirk Q41): users whose window is empty are
dropped first, and past ``max_users`` the least recently seen user is dropped.
It lives in process memory, as the original's did (behaviours.md §13).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import islice


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int = 10,
        window_s: float = 60.0,
        *,
        max_users: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_users = max_users
        self._clock = clock
        self._runs: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def allow(self, user_id: str) -> bool:
        """Count a run for ``user_id`` and return True, or return False at the limit."""
        now = self._clock()
        horizon = now - self.window_s
        runs = self._runs.get(user_id)
        if runs is None:
            self._evict(horizon)
            runs = deque(maxlen=self.limit)
            self._runs[user_id] = runs
        else:
            self._runs.move_to_end(user_id)
        while runs and runs[0] <= horizon:
            runs.popleft()
        if len(runs) >= self.limit:
            return False
        runs.append(now)
        return True

    def refund(self, user_id: str) -> None:
        """Take back the latest run counted for ``user_id``: it was refused after all."""
        runs = self._runs.get(user_id)
        if runs:
            runs.pop()

    def _evict(self, horizon: float) -> None:
        """Make room for one more user: drop a few of the least recently seen users whose
        window is empty, then, past the cap, the least recently seen one anyway."""
        for user_id, runs in list(islice(self._runs.items(), 8)):
            if runs and runs[-1] > horizon:
                break
            del self._runs[user_id]
        while len(self._runs) >= self.max_users:
            self._runs.popitem(last=False)
