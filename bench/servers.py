"""Start a server as a subprocess on 127.0.0.1, wait until every worker is up, measure, stop it.

Two kinds: `textclf serve MODEL` exactly as a user starts it, and the bare FastAPI baseline under
plain uvicorn (`bench.bare_app`). Both run uvicorn with its defaults (uvloop, httptools) and no
access log. The server gets its own session, so stopping it signals its process group (its
supervisor and workers) and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import ROOT, cpu_seconds, free_port, memory_mib, process_tree

STARTUP_TIMEOUT_S = 180.0
_READY_LINE = "Application startup complete"


@dataclass
class Server:
    kind: str
    workers: int
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def memory(self) -> dict[str, float]:
        """Largest single-process RSS and the tree's total RSS and PSS, in MiB."""
        per_process = [memory_mib(pid) for pid in self.pids()]
        return {
            "max_process_rss": max((m["rss"] for m in per_process), default=0.0),
            "total_rss": sum(m["rss"] for m in per_process),
            "total_pss": sum(m["pss"] for m in per_process),
            "processes": len(per_process),
        }

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())


def command(kind: str, model: Path | None, port: int, workers: int) -> list[str]:
    common = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if kind == "textclf":
        assert model is not None
        textclf = Path(sys.executable).parent / "textclf"
        return [str(textclf), "serve", str(model), *common, "--log-level", "info"]
    return [sys.executable, "-m", "uvicorn", "bench.bare_app:app", *common, "--no-access-log"]


@contextmanager
def serve(kind: str, *, workers: int = 1, model: Path | None = None) -> Iterator[Server]:
    """A running server of `kind` ('textclf' or 'bare'), stopped on exit."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix=f"bench-{kind}-", suffix=".log") as log:
        process = subprocess.Popen(
            command(kind, model, port, workers),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(kind, workers, f"http://127.0.0.1:{port}", process, Path(log.name))
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(process)


def _wait_ready(server: Server) -> None:
    """Until every worker has logged that its startup (model load) completed and /healthz
    answers: with several workers, one could otherwise take all the load while another loads."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.kind} server exited early:\n{server.log.read_text()}")
        if server.log.read_text(errors="replace").count(_READY_LINE) >= server.workers:
            try:
                if httpx.get(server.url + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"{server.kind} server not ready in {STARTUP_TIMEOUT_S}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it is the group leader), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
