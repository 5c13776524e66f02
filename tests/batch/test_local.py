"""The scoring processes: forked or spawned, every chunk comes back in order, scored as in this
process; a broken model, a dead worker and the caller's settings are handled as documented.

Tests that pass `method="fork"` fork this pytest process whatever threads it has (the guard,
`start_method`, is tested in a fresh process): the workers only score, as in `textclf batch`."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from tests.service.faults import broken_copy
from textclf.batch.job import usable_cores
from textclf.batch.local import (
    Chunk,
    ChunkScorer,
    InProcess,
    ScorerSpec,
    StartMethod,
    Texts,
    WorkerPool,
    _stops_blocked,
    _work,
)
from textclf.errors import ArtifactError, TextclfError

METHODS: list[StartMethod] = ["fork", "spawn"]


def _chunks(posts: list[str], sizes: list[int]) -> list[Chunk]:
    chunks, start = [], 0
    for number, size in enumerate(sizes):
        texts = [posts[(start + i) % len(posts)] for i in range(size)]
        chunks.append((number, Texts(list(range(start, start + size)), texts)))
        start += size
    return chunks


def _rows(results: Iterator[tuple[bytes, list[Any]]]) -> list[dict[str, Any]]:
    return [json.loads(line) for data, _ in results for line in data.splitlines()]


@pytest.mark.parametrize("method", METHODS)
def test_every_chunk_comes_back_in_order_as_scored_here(
    method: StartMethod, trained_model_dir: Path, posts: list[str]
) -> None:
    spec = ScorerSpec(trained_model_dir, 2, "jsonl", None)
    chunks = _chunks(posts, [37, 1, 64, 0, 250, 5, 90, 13, 120, 7])  # uneven: out-of-order returns
    with WorkerPool(spec, 2, method=method) as pool:
        got = _rows(pool.score(chunks))
        again = _rows(pool.score(chunks[:3]))  # a pool scores job after job
    with threadpool_limits(limits=1, user_api="blas"):  # as `textclf batch --workers 0` scores
        want = _rows(InProcess(spec).score(chunks))
    assert [r["id"] for r in got] == list(range(sum(len(c[1].ids) for c in chunks)))
    assert got == want  # one BLAS thread in both: the same sums, the same bytes
    assert again == want[: len(again)]


def test_a_broken_model_fails_before_any_worker_forks(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    root, needles = broken_copy(trained_model_dir, tmp_path, "truncated safetensors")
    with pytest.raises(ArtifactError) as caught:
        WorkerPool(ScorerSpec(root, 1, "jsonl", None), 2, method="fork")
    assert all(needle in str(caught.value) for needle in needles)
    assert not _stops_blocked_now()


def test_a_broken_model_fails_the_spawned_pool_as_it_starts(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    root, needles = broken_copy(trained_model_dir, tmp_path, "truncated safetensors")
    before = set(mp.active_children())  # other tests' servers may have children of their own
    with pytest.raises(TextclfError, match="could not start: ArtifactError") as caught:
        WorkerPool(ScorerSpec(root, 1, "jsonl", None), 2, method="spawn")
    assert all(needle in str(caught.value) for needle in needles)
    assert set(mp.active_children()) <= before  # the other worker, which had started, stopped
    assert not _stops_blocked_now()


@pytest.mark.parametrize("method", METHODS)
def test_a_worker_killed_mid_job_is_an_error_naming_resume(
    method: StartMethod, trained_model_dir: Path, posts: list[str]
) -> None:
    spec = ScorerSpec(trained_model_dir, 1, "jsonl", None)
    with WorkerPool(spec, 1, method=method) as pool:
        assert not _stops_blocked_now()  # restored once the workers started
        results = pool.score(_chunks(posts, [10] * 20))
        next(results)
        os.kill(pool.procs[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
        with pytest.raises(TextclfError, match=r"died \(exit code -9\); rerun with --resume"):
            list(results)


def _stops_blocked_now() -> set[int]:
    return signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}


def test_a_pool_stopped_halfway_refuses_another_job(
    trained_model_dir: Path, posts: list[str]
) -> None:
    with WorkerPool(ScorerSpec(trained_model_dir, 1, "jsonl", None), 1, method="fork") as pool:
        results = pool.score(_chunks(posts, [10] * 6))
        next(results)  # the rest stays in flight
        with pytest.raises(TextclfError, match="stopped halfway"):
            next(pool.score(_chunks(posts, [10])))


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _terminated_before_it_runs(*args: Any) -> None:
    """A worker that gets SIGTERM the moment it is forked, before `_work` has set a handler."""
    os.kill(os.getpid(), signal.SIGTERM)
    _work(*args)


def test_a_sigterm_between_fork_and_worker_start_waits_for_the_workers_handler(
    trained_model_dir: Path,
) -> None:
    """Without the blocked mask the caller's handler would run in the child (exit code 1 and a
    traceback); with it, the signal waits for `_work`'s own handler and ends the worker."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    ctx = mp.get_context("fork")
    done: Any = ctx.Queue()
    scorer = ChunkScorer(ScorerSpec(trained_model_dir, 1, "jsonl", None))
    try:
        with _stops_blocked():
            proc = ctx.Process(
                target=_terminated_before_it_runs, args=(scorer, ctx.Queue(), done, os.getpid())
            )
            proc.start()
        proc.join(timeout=30)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert proc.exitcode == -signal.SIGTERM
    assert not _stops_blocked_now()


def test_forked_workers_end_on_terminate_whatever_the_callers_sigterm_handler(
    trained_model_dir: Path,
) -> None:
    """`textclf batch` turns SIGTERM into KeyboardInterrupt; a forked worker must not inherit
    that (it would print a traceback and exit 1 rather than stop), even just after the fork."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        spec = ScorerSpec(trained_model_dir, 1, "jsonl", None)
        with WorkerPool(spec, 2, method="fork") as pool:
            list(pool.score(_chunks(["a text"], [1, 1])))
        assert [p.exitcode for p in pool.procs] == [-signal.SIGTERM] * 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_forked_workers_leave_the_callers_blas_threads_alone(
    trained_model_dir: Path, posts: list[str]
) -> None:
    spec = ScorerSpec(trained_model_dir, 1, "jsonl", None)
    with threadpool_limits(limits=2, user_api="blas"):  # whatever earlier tests left
        with WorkerPool(spec, 1, method="fork") as pool:
            list(pool.score(_chunks(posts, [5])))
        assert set(_blas_threads()) == {2}
        list(InProcess(spec).score(_chunks(posts, [5])))  # the caller's setting, untouched
        assert set(_blas_threads()) == {2}


@pytest.mark.parametrize("source", ["spec", "scorer"])
def test_a_worker_scores_with_one_blas_thread(source: str, trained_model_dir: Path) -> None:
    """What a spawned worker builds (from the spec) and what a forked one is handed (the
    parent's scorer), in a fresh process whose BLAS starts with one thread per core."""
    script = f"""
from threadpoolctl import threadpool_info
from textclf.batch.local import ChunkScorer, ScorerSpec, worker_scorer
spec = ScorerSpec({str(trained_model_dir)!r}, 1, "jsonl", None)
before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
worker_scorer(spec if {source == "spec"} else ChunkScorer(spec))
print(before, [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
"""
    unset = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    before, after = out.stdout.split()
    assert after == "[1]", out.stdout
    if usable_cores() > 1:
        assert before != after  # it was more: the call changed it


def test_only_a_single_threaded_process_on_linux_forks(trained_model_dir: Path) -> None:
    script = f"""
import threading
from textclf.batch.local import ScorerSpec, WorkerPool, start_method
with WorkerPool(ScorerSpec({str(trained_model_dir)!r}, 1, "jsonl", None), 1) as pool:
    chosen = pool.method
alone = start_method()
stop = threading.Event()
threading.Thread(target=stop.wait).start()
print(chosen, alone, start_method())
stop.set()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    want = "fork fork spawn" if sys.platform == "linux" else "spawn spawn spawn"
    assert out.stdout.split() == want.split()
