"""`textclf serve --workers N`: one supervisor, N uvicorn workers on one socket, acting as one.

The supervisor binds the socket once and starts N worker processes (spawned, as uvicorn's own
supervisor does), each running `uvicorn.Server(uvicorn.Config(app)).run(sockets=[sock])` on it,
with a control pipe each (`service.group`). It

- turns a reload asked of any worker (HTTP), or SIGHUP to itself, into one two-phase reload: every
  worker prepares the new model; only if all did do all commit, else all abort and the caller gets
  409 naming the worker and why. Each phase waits at most `RELOAD_TIMEOUT_S`;
- gives each run a fresh `PROMETHEUS_MULTIPROC_DIR` (removed at exit), so /metrics reports every
  worker's requests whichever answers, and marks a worker's gauges dead when it exits;
- restarts a worker that dies (it loads the folder as it is then);
- on SIGTERM or SIGINT, has every worker drain its requests in flight (uvicorn's graceful
  shutdown), then exits 0. Workers run in their own process group, so Ctrl-C reaches them once,
  through the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from service.group import RELOAD_TIMEOUT_S, Message, WorkerChannel

logger = logging.getLogger("textclf.service")

RESTART_DELAY_S = 1.0  # before a dead worker is replaced, so a crash loop does not spin
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    replies: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    exited: bool = False


class Supervisor:
    """Runs `workers` copies of the server on `host:port` until SIGTERM or SIGINT.

    `options` are `uvicorn.Config` keyword arguments for each worker; the workers read their
    `Settings` from the environment, as the CLI left it."""

    def __init__(self, *, workers: int, host: str, port: int, options: dict[str, Any]) -> None:
        self._n = workers
        self._address = (host, port)
        self._options = options
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()  # one reload at a time
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed_exits = 0

    def run(self) -> int:
        """Serve until stopped; 0 if every worker stopped cleanly."""
        if isinstance(self._options.get("log_config"), dict):
            logging.config.dictConfig(self._options["log_config"])
        try:
            sock = _bind(*self._address)
        except OSError as exc:
            host, port = self._address
            print(f"textclf serve: error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            return 1
        metrics_dir = Path(tempfile.mkdtemp(prefix="textclf-metrics-"))
        os.environ[METRICS_DIR_VARIABLE] = str(metrics_dir)  # before any worker is spawned
        try:
            return asyncio.run(self._serve(sock, metrics_dir))
        finally:
            sock.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)

    async def _serve(self, sock: socket.socket, metrics_dir: Path) -> int:
        self._sock, self._metrics_dir = sock, metrics_dir
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._reload_logged()))
        for index in range(1, self._n + 1):
            self._start(index)
        host, port = self._address
        logger.info("supervisor %d: %d workers on http://%s:%d", os.getpid(), self._n, host, port)
        await self._stopping.wait()
        return await self._stop()

    # -- workers -------------------------------------------------------------------------------

    def _start(self, index: int) -> None:
        if self._stopping.is_set():
            return
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=worker_main,
            args=(self._options, self._sock, theirs, index, self._metrics_dir),
            name=f"textclf-worker-{index}",
        )
        process.start()
        theirs.close()
        worker = self._workers[index] = _Worker(index, process, ours)
        loop = asyncio.get_running_loop()
        loop.add_reader(ours.fileno(), self._on_message, worker)
        loop.add_reader(process.sentinel, self._on_exit, worker)

    def _on_message(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "ready":
                    worker.ready.set()
                elif message[0] == "reload":
                    self._spawn(self._reload_for(worker, message[1]))
                else:
                    worker.replies.put_nowait(message)
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())

    def _on_exit(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.process.sentinel)
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(worker.conn.fileno())
        worker.process.join()
        worker.conn.close()
        worker.exited = True
        worker.ready.set()  # a reload waiting for it goes on, and finds it gone
        worker.replies.put_nowait(("died",))
        _mark_dead(worker.process.pid, self._metrics_dir)
        if self._workers.get(worker.index) is worker:
            del self._workers[worker.index]
        code = worker.process.exitcode
        if self._stopping.is_set():
            if code != 0:
                logger.error("worker %d exited with code %s while stopping", worker.index, code)
                self._failed_exits += 1
            return
        logger.error("worker %d exited (code %s); starting another", worker.index, code)
        loop.call_later(RESTART_DELAY_S, self._start, worker.index)

    async def _stop(self) -> int:
        logger.info("supervisor: stopping %d workers once their requests are answered", self._n)
        self._sock.close()
        for worker in list(self._workers.values()):
            with contextlib.suppress(ProcessLookupError):
                worker.process.terminate()  # SIGTERM: uvicorn drains, then the lifespan ends
        grace = float(self._options.get("timeout_graceful_shutdown") or 30) + 15
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while self._workers:
                    await asyncio.sleep(0.05)  # _on_exit removes each as it exits
        for worker in list(self._workers.values()):
            logger.error("worker %d did not stop in %.0fs; killing it", worker.index, grace)
            worker.process.kill()
            self._failed_exits += 1
        for task in list(self._tasks):
            task.cancel()
        return 0 if self._failed_exits == 0 else 1

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reloads -------------------------------------------------------------------------------

    async def _reload_for(self, asker: _Worker, request_id: int) -> None:
        ok, payload = await self.reload(asker)
        with contextlib.suppress(OSError):
            asker.conn.send(("reloaded", request_id, ok, payload))

    async def _reload_logged(self) -> None:
        logger.info("SIGHUP: reloading every worker")
        ok, payload = await self.reload(None)
        if ok:
            logger.info("reloaded every worker: %s", payload["current"])
        else:
            logger.error("reload refused: %s", payload)

    async def reload(self, asker: _Worker | None) -> tuple[bool, Any]:
        """Two phases over every live worker: (True, the asker's `ReloadResponse` data) once
        all serve the new model, or (False, why) with all still on the old one."""
        async with self._lock:
            workers = sorted(self._workers.values(), key=lambda w: w.index)
            if not await self._all_ready(workers):
                return False, "a worker is still starting; retry shortly"
            prepared = await self._ask(workers, ("prepare",), "prepared")
            refusals = [
                f"worker {w.index} of {len(workers)}: {_detail(reply)}"
                for w, reply in zip(workers, prepared, strict=True)
                if reply[0] != "prepared" or not reply[1]
            ]
            versions = {reply[3] for reply in prepared if reply[0] == "prepared" and reply[1]}
            if not refusals and len(versions) > 1:
                refusals = ["the model folder changed while the workers loaded it; reload again"]
            if refusals:
                self._tell(workers, ("abort",))
                return False, "every worker keeps the old model; " + "; ".join(refusals)
            committed = await self._ask(workers, ("commit",), "committed")
            answers = {w.index: r[1] for w, r in zip(workers, committed, strict=True) if len(r) > 1}
            if not answers:
                return False, "every worker exited during the reload; see the server log"
            chosen = asker.index if asker is not None and asker.index in answers else min(answers)
            return True, answers[chosen]

    async def _all_ready(self, workers: list[_Worker]) -> bool:
        """Wait for workers still starting, so none misses the reload."""
        try:
            async with asyncio.timeout(RELOAD_TIMEOUT_S):
                await asyncio.gather(*(w.ready.wait() for w in workers))
        except TimeoutError:
            return False
        return True

    async def _ask(self, workers: list[_Worker], message: Message, reply: str) -> list[Message]:
        for worker in workers:
            _drain(worker.replies)
            if worker.exited:
                worker.replies.put_nowait(("died",))
        self._tell(workers, message)
        return list(await asyncio.gather(*(_reply(w, reply) for w in workers)))

    @staticmethod
    def _tell(workers: list[_Worker], message: Message) -> None:
        for worker in workers:
            with contextlib.suppress(OSError):  # it died: its reply says so
                worker.conn.send(message)


async def _reply(worker: _Worker, kind: str) -> Message:
    try:
        async with asyncio.timeout(RELOAD_TIMEOUT_S):
            while True:
                message = await worker.replies.get()
                if message[0] in (kind, "died"):
                    return message
    except TimeoutError:
        return ("timeout",)


def _detail(reply: Message) -> str:
    if reply[0] == "died":
        return "it exited during the reload"
    if reply[0] == "timeout":
        return f"it did not answer within {RELOAD_TIMEOUT_S:g}s"
    return str(reply[2])


def _drain(queue: asyncio.Queue[Message]) -> None:
    while not queue.empty():
        queue.get_nowait()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _mark_dead(pid: int | None, metrics_dir: Path) -> None:
    """Drop the dead worker's live gauges from the aggregate (its counters stay counted)."""
    if pid is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path=str(metrics_dir))


def worker_main(
    options: dict[str, Any], sock: socket.socket, conn: Connection, index: int, metrics_dir: Path
) -> None:
    """A worker process's entry point: the settings from the environment, the model loaded, the
    heap frozen, then uvicorn serving the supervisor's socket until SIGTERM."""
    os.setpgrp()  # Ctrl-C goes to the supervisor only, which stops us once, gracefully
    from service.cli import exit_cleanly, freeze_heap

    # A stop asked while still loading is a clean exit too; uvicorn re-raises it after draining.
    signal.signal(signal.SIGTERM, exit_cleanly)
    import uvicorn

    from service.app import create_app
    from service.holder import load_scorer
    from service.settings import get_settings

    settings = get_settings()
    channel = WorkerChannel(conn, index=index, metrics_dir=metrics_dir)
    try:
        scorer = load_scorer(settings)
    except Exception as exc:
        print(f"textclf serve: worker {index}: cannot load the model: {exc}", file=sys.stderr)
        sys.exit(1)
    app = create_app(settings, scorer=scorer, group=channel)
    freeze_heap()
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)
