"""How fast over HTTP: `textclf serve` vs a bare FastAPI app, driven by wrk from another process.

For 1 and 2 workers, each server is started as a user would (`textclf serve MODEL --workers N`;
`uvicorn bench.bare_app:app --workers N`), warmed up, then loaded by wrk (closed loop, one wrk
thread, loopback) at 1, 8 and 32 connections with a one-text body and a 100-text body (real
20 Newsgroups test posts). Per cell: requests/s, documents/s, p50/p95/p99 latency, errors
(socket errors, timeouts and non-2xx answers), the server's CPU per request and its memory; and
textclf's requests/s as a ratio of the bare app's. The 100-text figures are also compared with
in-process documents/s of the same 100 texts with one torch thread, as one worker runs them.

Both servers run side by side (the idle one costs no CPU), and every cell is measured in
`--rounds` alternating rounds (bare, textclf, textclf, bare, ...), each server's row being its
median round: a shift in the machine's speed during the run then hits both servers alike
instead of whichever happened to be measured at the time.

wrk shares the two cores with the server, as any client on this machine would; without wrk
(`apt-get install -y wrk`) the async httpx driver in bench/httpx_driver.py is used instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, Result, Table, Target, default_model, load_splits, median_row, step
from bench.servers import Server, serve

NAME = "http_load"
WRK_SCRIPT = ROOT / "bench" / "wrk_post.lua"
P50_LIMIT_MS, P99_LIMIT_MS, BARE_RATIO, INPROCESS_RATIO, MEMORY_LIMIT_MB = 5.0, 25.0, 0.7, 0.7, 600
_COLUMNS = {
    "server": "server",
    "workers": "workers",
    "body": "texts/request",
    "connections": "connections",
    "rps": "requests/s",
    "dps": "docs/s",
    "p50_ms": "p50 ms",
    "p95_ms": "p95 ms",
    "p99_ms": "p99 ms",
    "errors": "errors",
    "cpu_ms": "server CPU ms/req",
    "ratio": "textclf/bare req/s",
    "rss_mib": "max process RSS MiB",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before cells")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--connections", default="1,8,32", help="comma-separated")
    parser.add_argument("--driver", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--quick", action="store_true", help="2-second cells (a smoke test)")
    parser.add_argument("--retrain", action="store_true", help="ignore the cached default model")


def run(args: argparse.Namespace) -> Result:
    duration = 2.0 if args.quick else args.duration
    warmup = 1.0 if args.quick else args.warmup
    workers = [int(w) for w in args.workers.split(",")]
    connections = [int(c) for c in args.connections.split(",")]
    driver = _driver(args.driver)
    model, _ = default_model("kept", retrain=args.retrain)
    with tempfile.TemporaryDirectory(prefix="textclf-bench-") as tmp:
        bodies, texts = _bodies(Path(tmp))
        inprocess = _inprocess_docs_per_second(model, texts[100], 2.0 if args.quick else 5.0)
        rows: list[dict[str, Any]] = []
        idle: dict[str, Any] = {}
        for n in workers:
            shape = _Shape(driver, bodies, connections, duration, warmup, args.rounds)
            found, idle_memory = _server_cells(n, model, shape)
            rows += found
            idle.update(idle_memory)
    _add_ratios(rows)
    targets = _targets(rows, inprocess)
    title = f"HTTP load, median of {args.rounds} alternating rounds of {duration:g} s per cell"
    table = Table(f"{title}, driver: {driver}", _COLUMNS, rows)
    details = {"inprocess_docs_per_s_100": inprocess, "idle_memory_mib": idle, "driver": driver}
    return Result(NAME, [table, _inprocess_table(rows, inprocess)], targets, details)


@dataclass(frozen=True)
class _Shape:
    """What every cell of a run looks like."""

    driver: str
    bodies: dict[int, Path]
    connections: list[int]
    duration: float
    warmup: float
    rounds: int


def _server_cells(
    workers: int, model: Path, shape: _Shape
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start both servers, check they answer, warm them up, then run every cell in alternating
    rounds. Returns each server's median row per cell, and each server's idle memory."""
    cells = len(shape.bodies) * len(shape.connections)
    with (
        step(f"bare and textclf, {workers} worker(s): {cells} cells x {shape.rounds} rounds"),
        serve("bare", workers=workers) as bare,
        serve("textclf", workers=workers, model=model) as textclf,
    ):
        servers = (bare, textclf)
        idle = {f"{s.kind}-{workers}": s.memory() for s in servers}
        for server in servers:
            _check_answers(server, shape.bodies)
            _load(shape.driver, server, shape.bodies[1], 8, shape.warmup)
        rows = []
        for size, body in shape.bodies.items():
            for c in shape.connections:
                rounds: dict[str, list[dict[str, Any]]] = {s.kind: [] for s in servers}
                for r in range(shape.rounds):
                    for server in servers if r % 2 == 0 else servers[::-1]:
                        cell = _cell(shape.driver, server, size, body, c, shape.duration)
                        rounds[server.kind].append(cell)
                rows += [_median_round(found) for found in rounds.values()]
    return rows, idle


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median requests/s (all its figures, for consistency); errors and
    peak memory over every round."""
    row = dict(median_row(rounds, "rps"))
    row["errors"] = sum(r["errors"] for r in rounds)
    row["rss_mib"] = max(r["rss_mib"] for r in rounds)
    row["rounds_rps"] = [r["rps"] for r in rounds]
    return row


def _driver(choice: str) -> str:
    if choice in ("auto", "wrk") and shutil.which("wrk"):
        return "wrk"
    if choice == "wrk":
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or --driver httpx)")
    print("wrk not found: using the async httpx driver (lower bounds)", file=sys.stderr)
    return "httpx"


def _bodies(tmp: Path) -> tuple[dict[int, Path], dict[int, list[str]]]:
    """One-text body: the test post of median length. 100-text body: 100 test posts in a
    seeded random order (every category, typical lengths)."""
    import random

    test = load_splits("kept").test.texts
    median = sorted(test, key=len)[len(test) // 2]
    sample = random.Random(0).sample(test, 100)
    texts = {1: [median], 100: sample}
    bodies = {}
    for size, chosen in texts.items():
        bodies[size] = tmp / f"body-{size}.json"
        bodies[size].write_text(json.dumps({"texts": chosen, "top_k": 1}))
    return bodies, texts


def _inprocess_docs_per_second(model: Path, texts: list[str], seconds: float) -> float:
    """`Predictor.predict` on the 100-text body, one torch thread: what one worker could do."""
    import torch

    import textclf

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictor = textclf.load(model)
        predictor.predict(texts)
        with step(f"in-process reference: predict(100 texts), 1 torch thread, {seconds:g}s"):
            rates = []
            for _ in range(3):
                done, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds / 3:
                    predictor.predict(texts)
                    done += len(texts)
                rates.append(done / (time.perf_counter() - start))
    finally:
        torch.set_num_threads(threads)
    return statistics.median(rates)


def _check_answers(server: Server, bodies: dict[int, Path]) -> None:
    """Before timing anything: each body gets a 200 with one prediction per text (the bare app
    answers a constant, so only its status is checked)."""
    for size, body in bodies.items():
        response = httpx.post(
            server.url + "/v1/predict",
            content=body.read_bytes(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        if response.status_code != 200:
            raise SystemExit(f"{server.kind}: {response.status_code} {response.text[:300]}")
        if server.kind == "textclf" and len(response.json()["predictions"]) != size:
            raise SystemExit(f"{server.kind}: wrong number of predictions for {size} texts")


def _load(
    driver: str, server: Server, body: Path, connections: int, duration: float
) -> dict[str, Any]:
    url = server.url + "/v1/predict"
    if driver == "wrk":
        command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s"]
        command += ["-s", str(WRK_SCRIPT), url, "--", str(body)]
    else:
        command = [sys.executable, "-m", "bench.httpx_driver", url, str(body)]
        command += ["--connections", str(connections), "--duration", str(duration)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
            return result
    raise SystemExit(f"no result from {command[0]}:\n{done.stdout}\n{done.stderr}")


def _cell(
    driver: str, server: Server, size: int, body: Path, connections: int, duration: float
) -> dict[str, Any]:
    cpu = server.cpu_seconds()
    result = _load(driver, server, body, connections, duration)
    cpu = server.cpu_seconds() - cpu
    seconds = result["duration_us"] / 1e6
    requests = result["requests"]
    latency = result["latency_us"]
    errors = sum(result["errors"].values())
    return {
        "server": server.kind,
        "workers": server.workers,
        "body": size,
        "connections": connections,
        "rps": requests / seconds,
        "dps": requests * size / seconds,
        "p50_ms": latency["p50"] / 1000,
        "p95_ms": latency["p95"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "errors": errors,
        "cpu_ms": cpu / max(requests, 1) * 1000,
        "ratio": "-",
        "rss_mib": server.memory()["max_process_rss"],
        "memory": server.memory(),
        "raw": result,
    }


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    bare = {(r["workers"], r["body"], r["connections"]): r for r in rows if r["server"] == "bare"}
    for row in rows:
        twin = bare.get((row["workers"], row["body"], row["connections"]))
        if row["server"] == "textclf" and twin is not None:
            row["ratio"] = row["rps"] / twin["rps"]


def _find(rows: list[dict[str, Any]], **where: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row[k] == v for k, v in where.items()):
            return row
    return None


def _inprocess_table(rows: list[dict[str, Any]], inprocess: float) -> Table:
    """100-text requests: HTTP documents/s per worker as a share of in-process documents/s."""
    out = [
        {
            "workers": r["workers"],
            "connections": r["connections"],
            "per_worker": r["dps"] / r["workers"],
            "inprocess": inprocess,
            "share": r["dps"] / r["workers"] / inprocess,
        }
        for r in rows
        if r["server"] == "textclf" and r["body"] == 100
    ]
    columns = {
        "workers": "workers",
        "connections": "connections",
        "per_worker": "HTTP docs/s per worker",
        "inprocess": "in-process docs/s (1 thread)",
        "share": "share",
    }
    return Table("100-text requests vs in-process predict(100 texts)", columns, out)


def _targets(rows: list[dict[str, Any]], inprocess: float) -> list[Target]:
    targets = []
    one = _find(rows, server="textclf", workers=1, body=1, connections=1)
    if one is not None:
        targets.append(
            Target("1 worker, 1 text, 1 connection: p50", one["p50_ms"], P50_LIMIT_MS, "<=", "ms")
        )
        targets.append(
            Target("1 worker, 1 text, 1 connection: p99", one["p99_ms"], P99_LIMIT_MS, "<=", "ms")
        )
    eight = _find(rows, server="textclf", workers=1, body=1, connections=8)
    if eight is not None and eight["ratio"] != "-":
        targets.append(
            Target(
                "1 worker, 1 text, 8 connections: req/s / bare app",
                eight["ratio"],
                BARE_RATIO,
                ">=",
            )
        )
    ours = [r for r in rows if r["server"] == "textclf"]
    targets.append(
        Target("errors, all textclf cells", float(sum(r["errors"] for r in ours)), 0.0, "<=")
    )
    hundred = [r for r in ours if r["workers"] == 1 and r["body"] == 100]
    if hundred:
        best = max(r["dps"] for r in hundred)
        targets.append(
            Target(
                "1 worker, 100 texts: best docs/s / in-process",
                best / inprocess,
                INPROCESS_RATIO,
                ">=",
            )
        )
    peak = max((r["rss_mib"] * 2**20 / 1e6 for r in ours), default=0.0)
    targets.append(
        Target("serving process memory (max RSS, any worker)", peak, MEMORY_LIMIT_MB, "<=", "MB")
    )
    return targets
