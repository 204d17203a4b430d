"""The other load generator considered: an async httpx client, 32 concurrent connections.

`python -m bench.httpx_load URL SECONDS [TOKEN]` GETs URL for SECONDS and prints the 2xx
answers per second and the CPU seconds this client used. Run beside wrk on the same server
(bench/RESULTS.md) it loaded the server less and cost far more CPU, so `make bench` uses wrk.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

import httpx

CONNECTIONS = 32


async def load(url: str, seconds: float, token: str) -> tuple[int, float]:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    done = 0
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                response = await client.get(url)
                if response.status_code < 300:
                    done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        return done, time.perf_counter() - started


def main() -> None:
    url, seconds = sys.argv[1], float(sys.argv[2])
    token = sys.argv[3] if len(sys.argv) > 3 else ""
    before = resource.getrusage(resource.RUSAGE_SELF)
    done, elapsed = asyncio.run(load(url, seconds, token))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{done / elapsed:.0f} req/s, client CPU {cpu:.1f} s over {elapsed:.1f} s")


if __name__ == "__main__":
    main()
