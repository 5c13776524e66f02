"""Score chunks in worker processes and hand their encoded rows back in input order.

Each worker ("spawn": no inherited locks or torch threads) loads the model once, with one torch
thread, and turns (chunk number, ids, texts) into the chunk's output bytes. Queues are bounded
(two chunks in flight per worker), so memory stays flat however long the input is. Workers
watch their parent from a thread: a job killed with SIGKILL leaves no orphan behind.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from textclf.batch.rows import encode, prediction_rows
from textclf.errors import TextclfError

Chunk = tuple[int, list[Any], list[str]]  # (number, ids, texts)
_POLL_S = 0.5


class ChunkScorer:
    """The model and the output format: chunk in, bytes out (used in-process and in workers)."""

    def __init__(self, model: Path, top_k: int, fmt: str) -> None:
        import textclf

        self.predictor = textclf.load(model, threads=1)
        self.top_k, self.fmt = top_k, fmt

    def __call__(self, ids: Sequence[Any], texts: list[str]) -> bytes:
        if not texts:
            return b""
        probs = self.predictor.predict_proba(texts)
        rows = prediction_rows(ids, probs, self.predictor.labels, self.top_k)
        return encode(self.fmt, rows, self.top_k)


def score_in_process(chunks: Iterable[Chunk], scorer: ChunkScorer) -> Iterator[bytes]:
    for _, ids, texts in chunks:
        yield scorer(ids, texts)


def score_in_workers(
    chunks: Iterable[Chunk], model: Path, top_k: int, fmt: str, workers: int
) -> Iterator[bytes]:
    """Each chunk's bytes, in the order the chunks came, from `workers` processes."""
    ctx = mp.get_context("spawn")
    todo: Any = ctx.Queue(maxsize=workers * 2)
    done: Any = ctx.Queue()
    procs = [
        ctx.Process(target=_work, args=(model, top_k, fmt, todo, done, os.getpid()), daemon=True)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        yield from _ordered(iter(chunks), todo, done, procs, workers * 2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
        todo.cancel_join_thread()


def _ordered(
    chunks: Iterator[Chunk], todo: Any, done: Any, procs: list[Any], in_flight: int
) -> Iterator[bytes]:
    results: dict[int, bytes] = {}
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
            number, data = _receive(done, procs)
            results[number] = data
        yield results.pop(written)
        written += 1


def _receive(done: Any, procs: list[Any]) -> tuple[int, bytes]:
    while True:
        try:
            number, data, error = done.get(timeout=_POLL_S)
        except queue.Empty:
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                raise TextclfError(
                    f"a scoring process died (exit code {dead[0].exitcode}); rerun with --resume"
                ) from None
            continue
        if error is not None:
            raise TextclfError(f"scoring failed: {error}")
        return number, data


def _work(model: Path, top_k: int, fmt: str, todo: Any, done: Any, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates us
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    try:
        scorer = ChunkScorer(model, top_k, fmt)
    except Exception as exc:
        done.put((-1, b"", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            number, ids, texts = todo.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        try:
            done.put((number, scorer(ids, texts), None))
        except Exception:
            done.put((number, b"", traceback.format_exc(limit=3)))
            return


def _exit_with(parent: int) -> None:
    """Exit as soon as the parent is gone (SIGKILL gives it no chance to stop us): a worker can
    be blocked for good reading a chunk the dead parent was halfway through sending."""
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    os._exit(1)
