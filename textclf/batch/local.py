"""Score chunks in worker processes and hand their encoded rows back in input order.

Each worker ("spawn": no inherited locks or threads) loads the model once for NumPy scoring
(`textclf.host`: no torch import, which would cost ~2 s per process before its first row) with one
BLAS thread, and turns (chunk number, payload) into the chunk's output bytes and its bad rows. A
payload is raw `Lines` (JSON Lines, text: the worker parses them) or `Texts` already parsed.
Queues are bounded (two chunks in flight per worker), so memory stays flat however long the
input is. Workers watch their parent from a thread: a job killed with SIGKILL leaves no orphan
behind.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from textclf.batch.rows import encode, prediction_rows
from textclf.batch.sources import BadRow, LineParser, Lines, Row
from textclf.errors import TextclfError


class Texts(NamedTuple):
    ids: list[Any]
    texts: list[str]


Chunk = tuple[int, Lines | Texts]  # (number, payload)
Scored = tuple[bytes, list[BadRow]]  # a chunk's output bytes, and its rows that were bad
_POLL_S = 0.5
_READY, _FAILED = -1, -2  # chunk numbers of a worker's messages that carry no chunk


class ChunkScorer:
    """The model, the input's line parser and the output format: chunk in, bytes out (used
    in-process and in workers)."""

    def __init__(self, model: Path, top_k: int, fmt: str, parse: LineParser | None) -> None:
        from textclf import host

        self.model = host.load(model, threads=1)
        self.top_k, self.fmt, self.parse = top_k, fmt, parse

    def __call__(self, payload: Lines | Texts) -> Scored:
        bad: list[BadRow] = []
        if isinstance(payload, Lines):
            assert self.parse is not None, "Lines need the input's parser"
            items = self.parse(payload)
            bad = [item for item in items if isinstance(item, BadRow)]
            rows = [item for item in items if isinstance(item, Row)]
            payload = Texts([r.id for r in rows], [r.text for r in rows])
        return self._score(payload.ids, payload.texts), bad

    def _score(self, ids: Sequence[Any], texts: list[str]) -> bytes:
        if not texts:
            return b""
        probs = self.model.predict_proba(texts)
        rows = prediction_rows(ids, probs, self.model.labels, self.top_k)
        return encode(self.fmt, rows, self.top_k)


def score_in_process(
    chunks: Iterable[Chunk], scorer: ChunkScorer, on_ready: Callable[[int], None]
) -> Iterator[Scored]:
    on_ready(0)
    for _, payload in chunks:
        yield scorer(payload)


def score_in_workers(
    chunks: Iterable[Chunk],
    model: Path,
    top_k: int,
    fmt: str,
    parse: LineParser | None,
    workers: int,
    on_ready: Callable[[int], None],
) -> Iterator[Scored]:
    """Each chunk's result, in the order the chunks came, from `workers` processes;
    `on_ready(n)` once every one of them has loaded the model, n chunks having come back by
    then (from workers that were ready sooner)."""
    ctx = mp.get_context("spawn")
    todo: Any = ctx.Queue(maxsize=workers * 2)
    done: Any = ctx.Queue()
    procs = [
        ctx.Process(
            target=_work, args=(model, top_k, fmt, parse, todo, done, os.getpid()), daemon=True
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        receive = _Receiver(done, procs, on_ready)
        yield from _ordered(iter(chunks), todo, receive, workers * 2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
        todo.cancel_join_thread()


def _ordered(
    chunks: Iterator[Chunk], todo: Any, receive: Callable[[], tuple[int, Scored]], in_flight: int
) -> Iterator[Scored]:
    results: dict[int, Scored] = {}
    sent = written = 0
    exhausted = False
    while True:
        while not exhausted and sent - written < in_flight:
            chunk = next(chunks, None)
            if chunk is None:
                exhausted = True
            else:
                todo.put(chunk)
                sent += 1
        if exhausted and written == sent:
            return
        while written not in results:
            number, data = receive()
            results[number] = data
        yield results.pop(written)
        written += 1


class _Receiver:
    """The next chunk's result from the workers, noting when all of them are ready and failing
    loudly when one died or raised."""

    def __init__(self, done: Any, procs: list[Any], on_ready: Callable[[int], None]) -> None:
        self.done, self.procs, self.on_ready = done, procs, on_ready
        self.waiting = len(procs)  # workers still loading the model
        self.received = 0  # chunk results so far

    def __call__(self) -> tuple[int, Scored]:
        while True:
            try:
                number, data, error = self.done.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in self.procs if not p.is_alive()]
                if dead:
                    raise TextclfError(
                        f"a scoring process died (exit code {dead[0].exitcode}); "
                        "rerun with --resume"
                    ) from None
                continue
            if error is not None:
                raise TextclfError(f"scoring failed: {error}")
            if number != _READY:
                self.received += 1
                return number, data
            self.waiting -= 1
            if self.waiting == 0:
                self.on_ready(self.received)


def _work(
    model: Path, top_k: int, fmt: str, parse: LineParser | None, todo: Any, done: Any, parent: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates us
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    try:
        scorer = ChunkScorer(model, top_k, fmt, parse)
    except Exception as exc:
        done.put((_FAILED, None, f"{type(exc).__name__}: {exc}"))
        return
    done.put((_READY, None, None))
    while True:
        try:
            number, payload = todo.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        try:
            done.put((number, scorer(payload), None))
        except Exception:
            done.put((number, None, traceback.format_exc(limit=3)))
            return


def _exit_with(parent: int) -> None:
    """Exit as soon as the parent is gone (SIGKILL gives it no chance to stop us): a worker can
    be blocked for good reading a chunk the dead parent was halfway through sending."""
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    os._exit(1)
