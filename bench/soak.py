"""Soak: sustained load on `textclf serve` over loopback; no errors, and memory that stays flat.

    python -m bench soak [--duration 60] [--connections 32] [--model DIR]
    python -m bench.soak [the same options]

Starts `textclf serve MODEL` as a user would (the cached default 20 Newsgroups model unless
`--model` is given), warms it up, records the server's resident memory, then keeps `connections`
closed-loop clients busy for `duration` seconds with a rotating mix of requests: 1, 8 and 64
texts, short and long ones (a 20,000-character text goes through the bulk lane), empty,
whitespace-only, emoji and right-to-left texts, top_k from 1 to 3. Every answer is checked: status
200, one prediction per text, top_k labels each. Memory is sampled every second and recorded
again at the end. Targets: zero errors, and memory growth under 10% from after warm-up to the end.

The load generator (`measure`) needs nothing but httpx and /proc, so the test suite runs a
few-second version of the same soak (tests/service/test_soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

NAME = "soak"
GROWTH_LIMIT_PCT = 10.0

_WORDS = [
    *("orbit", "rocket", "shuttle", "launch", "nasa", "moon", "satellite", "pitcher", "inning"),
    *("baseball", "home", "run", "graphics", "polygon", "shader", "render", "opengl", "pixel"),
    *("image", "jpeg", "the", "a", "of", "and", "to", "in", "is", "it", "that"),
]
# Odd but valid texts (an empty or blank one is a 422 by design, not load to measure).
_ODD = ["a", "   \t\n x", "🚀🌕⚾ 🎨", "مرحبا بالعالم שלום עולם", "ünïcödé naïve", "\x00\x01 ctrl"]


@dataclass
class Soak:
    """What one soak saw: requests, errors by kind, latencies and the server's memory."""

    seconds: float
    connections: int
    requests: int = 0
    texts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0
    rss_samples_mib: list[float] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def growth_pct(self) -> float:
        return 100.0 * (self.rss_after_mib - self.rss_before_mib) / self.rss_before_mib

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0

        return {
            "seconds": round(self.seconds, 1),
            "connections": self.connections,
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "texts": self.texts,
            "errors": self.error_count,
            "errors_by_kind": dict(self.errors),
            "p50_ms": round(pct(50), 2),
            "p99_ms": round(pct(99), 2),
            "max_ms": round(ordered[-1], 2) if ordered else 0.0,
            "rss_before_mib": round(self.rss_before_mib, 1),
            "rss_after_mib": round(self.rss_after_mib, 1),
            "rss_peak_mib": round(max(self.rss_samples_mib, default=self.rss_after_mib), 1),
            "growth_pct": round(self.growth_pct, 2),
        }


def bodies(seed: int = 0) -> list[tuple[bytes, int, int]]:
    """Request bodies as (JSON, number of texts, top_k): the rotating mix every client sends."""
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(words))

    out = []
    for i in range(48):
        n = (1, 1, 8, 1, 64, 1)[i % 6]
        texts = [text(rng.randint(3, 60)) for _ in range(n)]
        if i % 4 == 1:
            texts[0] = _ODD[(i // 4) % len(_ODD)]
        if i % 16 == 3:
            texts[0] = text(3_000)  # ~20,000 characters
        top_k = 1 + i % 3
        out.append((json.dumps({"texts": texts, "top_k": top_k}).encode(), n, top_k))
    return out


def rss_mib(pids: Sequence[int]) -> float:
    """Resident memory of `pids` together, in MiB, from /proc."""
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


async def _drive(
    url: str,
    *,
    connections: int,
    seconds: float,
    record: Soak | None,
    headers: dict[str, str],
) -> None:
    """`connections` closed-loop clients for `seconds`; into `record` unless warming up."""
    mix = bodies()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    request_headers = {"content-type": "application/json", **headers}
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def client_loop(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                body, n_texts, top_k = mix[i % len(mix)]
                i += 1
                start = time.perf_counter()
                problem = await _one(client, body, n_texts, top_k, request_headers)
                if record is None:
                    continue
                record.requests += 1
                record.texts += n_texts
                record.latencies_ms.append((time.perf_counter() - start) * 1000)
                if problem is not None:
                    record.errors[problem] += 1

        await asyncio.gather(*(client_loop(7 * c) for c in range(connections)))


async def _one(
    client: httpx.AsyncClient, body: bytes, n_texts: int, top_k: int, headers: dict[str, str]
) -> str | None:
    """None if the answer is right, else what went wrong."""
    try:
        response = await client.post("/v1/predict", content=body, headers=headers)
    except httpx.HTTPError as exc:  # kept with its message: a soak error must be explainable
        return f"{type(exc).__name__}: {exc or exc.__cause__ or exc.__context__!r}"[:200]
    if response.status_code != 200:
        return f"status {response.status_code}"
    try:
        predictions = response.json()["predictions"]
    except (ValueError, KeyError):
        return "unparsable answer"
    if len(predictions) != n_texts or any(len(p["top_k"]) != top_k for p in predictions):
        return "wrong answer"
    return None


async def _sample(
    pids: Callable[[], Sequence[int]], into: list[float], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        into.append(rss_mib(pids()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _measure(
    url: str,
    pids: Callable[[], Sequence[int]],
    *,
    connections: int,
    seconds: float,
    warmup: float,
    headers: dict[str, str],
) -> Soak:
    await _drive(url, connections=connections, seconds=warmup, record=None, headers=headers)
    soak = Soak(seconds=seconds, connections=connections, rss_before_mib=rss_mib(pids()))
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(_sample(pids, soak.rss_samples_mib, stop))
    began = time.perf_counter()
    await _drive(url, connections=connections, seconds=seconds, record=soak, headers=headers)
    soak.seconds = time.perf_counter() - began
    stop.set()
    await sampler
    soak.rss_after_mib = rss_mib(pids())
    return soak


def measure(
    url: str,
    pids: Callable[[], Sequence[int]],
    *,
    connections: int = 32,
    seconds: float = 60.0,
    warmup: float = 5.0,
    headers: dict[str, str] | None = None,
) -> Soak:
    """Warm the server at `url` up, then soak it; `pids()` lists the server's processes."""
    return asyncio.run(
        _measure(
            url,
            pids,
            connections=connections,
            seconds=seconds,
            warmup=warmup,
            headers=headers or {},
        )
    )


# --- as a benchmark -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before it")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--model", type=Path, help="model folder (default: the cached 20NG one)")
    parser.add_argument("--quick", action="store_true", help="10 seconds (a smoke test)")


def run(args: argparse.Namespace) -> Any:
    """Start the server, soak it, and return a `bench.common.Result`."""
    from bench.common import Result, Table, Target, default_model, step
    from bench.servers import serve

    seconds = 10.0 if args.quick else args.duration
    model = args.model if args.model is not None else default_model()[0]
    with (
        serve("textclf", workers=args.workers, model=model) as server,
        step(f"soaking {server.url}: {args.connections} connections for {seconds:g}s"),
    ):
        soak = measure(
            server.url,
            server.pids,
            connections=args.connections,
            seconds=seconds,
            warmup=args.warmup,
        )
    figures = {"workers": args.workers, **soak.summary()}
    columns = {key: key.replace("_", " ") for key in figures if key != "errors_by_kind"}
    return Result(
        NAME,
        [Table("soak", columns, [figures])],
        [
            Target("errors", soak.error_count, 0, "<="),
            Target("memory growth", soak.growth_pct, GROWTH_LIMIT_PCT, "<=", "%"),
        ],
        details={**figures, "model": str(model), "rss_samples_mib": soak.rss_samples_mib},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.soak ARGS` is `python -m bench soak ARGS`."""
    from bench.__main__ import main as bench_main

    return bench_main(["soak", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
