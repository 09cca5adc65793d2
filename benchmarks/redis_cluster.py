"""A private three-master Redis Cluster on free loopback ports until Ctrl-C, for the load
tools' ``--cluster`` runs (the tests' own cluster: tests/support/redis_cluster.py).

    .venv/bin/python -m benchmarks.redis_cluster      # prints the URL of one node
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.redis_cluster import RedisCluster


async def main() -> None:
    async with RedisCluster() as cluster:
        print(cluster.url, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
