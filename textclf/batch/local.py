"""Score chunks in worker processes and hand their encoded rows back in input order.

Workers score in NumPy (`textclf.host`; importing torch would cost each ~2 s before its first
row) with one BLAS thread each, turning (chunk number, payload) into the chunk's output bytes
and its bad rows. A payload is raw `Lines` (JSON Lines, text: the worker parses them) or
`Texts` already parsed. Queues are bounded (two chunks in flight per worker), so memory stays flat
however long the input is. Workers watch their parent from a thread: a job killed with SIGKILL
leaves no orphan behind.

How workers start (`start_method`): on Linux, from a process with no other Python thread, they
are forked after the parent has loaded and verified the model once; each inherits it (the
weights are the same mapped pages) and can score at once. Otherwise ("spawn") each starts a
fresh interpreter and loads the model itself: ~0.5 s of imports and loading per process, a sixth
of a 30,000-row job. Either way the pool is ready, or has failed loudly, when it is built.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

from textclf.batch.rows import encode, prediction_rows
from textclf.batch.sources import BadRow, LineParser, Lines, Row
from textclf.errors import TextclfError


class Texts(NamedTuple):
    ids: list[Any]
    texts: list[str]


class ScorerSpec(NamedTuple):
    """What a worker needs to build its `ChunkScorer`."""

    model: Path
    top_k: int
    fmt: str
    parse: LineParser | None


StartMethod = Literal["fork", "spawn"]
Chunk = tuple[int, Lines | Texts]  # (number, payload)
Scored = tuple[bytes, list[BadRow]]  # a chunk's output bytes, and its rows that were bad
_POLL_S = 0.5
_READY, _FAILED = -1, -2  # chunk numbers of a worker's messages that carry no chunk
_STOPS = {signal.SIGINT, signal.SIGTERM}
_STOP_S = 5.0  # for every worker to end once terminated


class ChunkScorer:
    """The model, the input's line parser and the output format: chunk in, bytes out (used
    in-process and in workers)."""

    def __init__(self, spec: ScorerSpec) -> None:
        from textclf import host

        self.model = host.load(spec.model)
        self.top_k, self.fmt, self.parse = spec.top_k, spec.fmt, spec.parse

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


def start_method() -> StartMethod:
    """Fork where it is safe and cheap, else spawn. A lock another thread holds at the fork
    stays locked in the child for good, so only a single-threaded process forks (the job starts
    its workers before it opens a file or a progress bar). Native threads are not counted:
    OpenBLAS's pool, the one numpy starts, shuts itself down around a fork. Other systems spawn
    (macOS's own libraries are not fork-safe)."""
    return "fork" if sys.platform == "linux" and threading.active_count() == 1 else "spawn"


class InProcess:
    """Scoring in the job's own process (--workers 0), behind the same interface as the pool."""

    def __init__(self, spec: ScorerSpec) -> None:
        self.scorer = ChunkScorer(spec)

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def score(self, chunks: Iterable[Chunk]) -> Iterator[Scored]:
        """With the caller's BLAS threads (`textclf batch --workers 0` holds them to one, as in
        a worker: the same sums, the same bytes)."""
        return (self.scorer(payload) for _, payload in chunks)


class WorkerPool:
    """`workers` scoring processes, each holding the model once this returns (a broken model
    folder or a worker that cannot start raises here); `score(chunks)` gives each chunk's result
    in the order the chunks came."""

    def __init__(
        self, spec: ScorerSpec, workers: int, *, method: StartMethod | None = None
    ) -> None:
        self.method = method or start_method()
        ctx = mp.get_context("fork") if self.method == "fork" else mp.get_context("spawn")
        # Forked workers inherit a model loaded (and verified) once here; spawned ones load it.
        source = _preloaded(spec) if self.method == "fork" else spec
        self.todo: Any = ctx.Queue(maxsize=workers * 2)
        self.done: Any = ctx.Queue()
        self.procs = [
            ctx.Process(target=_work, args=(source, self.todo, self.done, os.getpid()), daemon=True)
            for _ in range(workers)
        ]
        self._receive = _Receiver(self.done, self.procs)
        self._in_flight = False
        try:
            self._start()
            self._receive.wait_ready()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def score(self, chunks: Iterable[Chunk]) -> Iterator[Scored]:
        """One job at a time: results still in flight from a job stopped halfway would be taken
        for the next one's, so such a pool refuses more work (close it)."""
        if self._in_flight:
            raise TextclfError("this pool stopped halfway through a job; close it")
        self._in_flight = True
        yield from _ordered(iter(chunks), self.todo, self._receive, len(self.procs) * 2)
        self._in_flight = False

    def close(self) -> None:
        started = [proc for proc in self.procs if proc.pid is not None]
        for proc in started:
            proc.terminate()
        deadline = time.monotonic() + _STOP_S
        for proc in started:
            proc.join(timeout=max(deadline - time.monotonic(), 0))
            if proc.exitcode is None:  # still starting (SIGTERM blocked: see _start) or stuck
                proc.kill()
                proc.join()
        self.todo.cancel_join_thread()

    def _start(self) -> None:
        """SIGINT and SIGTERM wait until a worker has set its own handlers (a forked one starts
        with the caller's: the CLI's turns SIGTERM into a traceback). Blocked in this thread
        only: a signal another thread takes can still interrupt a `start`, and a worker forked
        just then is not in `procs`; it ends with its parent (`_exit_with`)."""
        with _stops_blocked():
            for proc in self.procs:
                proc.start()


@contextmanager
def _stops_blocked() -> Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a pending handler may raise here
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _preloaded(spec: ScorerSpec) -> ChunkScorer:
    """The scorer every forked worker inherits, having scored a text once: what a first chunk
    imports (scipy.sparse, 0.13 s; pyarrow for Parquet) is imported here once, not per worker."""
    scorer = ChunkScorer(spec)
    scorer(Texts([0], ["a first text"]))
    return scorer


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
    """The workers' messages: their readiness, then chunk results; fails loudly when a worker
    died, could not start or raised."""

    def __init__(self, done: Any, procs: list[Any]) -> None:
        self.done, self.procs = done, procs
        self.starting = True

    def wait_ready(self) -> None:
        """Until every worker holds the model (no chunk is sent before)."""
        for _ in self.procs:
            number, _ = self()
            assert number == _READY, f"chunk {number} came before every worker was ready"
        self.starting = False

    def __call__(self) -> tuple[int, Any]:
        while True:
            try:
                number, data, error = self.done.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in self.procs if not p.is_alive()]
                if not dead:
                    continue
                try:  # what it said before it went (an error), if it said anything
                    number, data, error = self.done.get(timeout=_POLL_S)
                except queue.Empty:
                    raise TextclfError(self._died(dead[0].exitcode)) from None
            if number == _FAILED:
                raise TextclfError(f"a scoring process could not start: {error}")
            if error is not None:
                raise TextclfError(f"scoring failed: {error}")
            return number, data

    def _died(self, code: int | None) -> str:
        if self.starting:
            return f"a scoring process exited while starting (exit code {code})"
        return f"a scoring process died (exit code {code}); rerun with --resume"


def _work(source: ScorerSpec | ChunkScorer, todo: Any, done: Any, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker had the caller's handler
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)  # blocked until now: WorkerPool._start
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    try:
        scorer = worker_scorer(source)
    except Exception as exc:
        done.put((_FAILED, None, f"{type(exc).__name__}: {exc}"))
        return
    # This process's own switch: its GC never walks the model's objects again, so a forked
    # worker leaves the pages it shares with its parent unwritten (no gc.collect first: that
    # walk would write them).
    gc.freeze()
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


def worker_scorer(source: ScorerSpec | ChunkScorer) -> ChunkScorer:
    """A worker's scorer, its own (spawned) or the parent's (forked), with one BLAS thread:
    the workers share the cores."""
    from textclf import host

    scorer = ChunkScorer(source) if isinstance(source, ScorerSpec) else source
    host.one_blas_thread()
    return scorer


def _exit_with(parent: int) -> None:
    """Exit as soon as the parent is gone (SIGKILL gives it no chance to stop us): a worker can
    be blocked for good reading a chunk the dead parent was halfway through sending."""
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    os._exit(1)
