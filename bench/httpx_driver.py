"""Fallback load driver for `http_load` when wrk is not installed: closed-loop async httpx.

`python -m bench.httpx_driver URL BODY_FILE --connections C --duration S` keeps C requests in
flight for S seconds over C pooled connections and prints one line, `WRK_JSON {...}`, in the same
shape as bench/wrk_post.lua. A Python client costs far more CPU per request than wrk, and on a
2-core machine that CPU is taken from the server, so its figures are lower bounds; install wrk
(`apt-get install -y wrk`) for the figures in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx

from bench.common import percentile


async def _drive(url: str, body: bytes, connections: int, duration: float) -> dict[str, object]:
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    received = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal received
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.TimeoutException:
                    errors["timeout"] += 1
                    continue
                except httpx.ConnectError:
                    errors["connect"] += 1
                    continue
                except httpx.HTTPError:
                    errors["read"] += 1
                    continue
                latencies.append(time.perf_counter() - start)
                received += len(response.content)
                if response.status_code >= 400:
                    errors["status"] += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    us = [x * 1e6 for x in latencies]
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": received,
        "errors": errors,
        "latency_us": {
            "min": min(us, default=0),
            "mean": sum(us) / len(us) if us else 0,
            "max": max(us, default=0),
            **{f"p{q}".replace(".", ""): percentile(us, q) for q in (50, 90, 95, 99, 99.9)},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("body", type=Path)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(_drive(args.url, args.body.read_bytes(), args.connections, args.duration))
    print("WRK_JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
