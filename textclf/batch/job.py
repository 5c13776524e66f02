"""One batch job: check the paths, resume or start, stream chunks through an engine, commit.

Chunks are cut from the input in the main process (JSON Lines and text as raw lines, parsed by
the workers), bad rows are stopped on or set aside here, and results are written in input
order; after each chunk the output and the errors file are made durable, then the checkpoint,
so a kill at any instant leaves a resumable prefix.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

from textclf.batch import checkpoint
from textclf.batch.config import BatchConfig, input_format, output_format
from textclf.batch.local import Chunk, InProcess, Scored, ScorerSpec, Texts, WorkerPool
from textclf.batch.rows import csv_header
from textclf.batch.sinks import ParquetSink, Sink, TextSink
from textclf.batch.sources import (
    LINE_FORMATS,
    BadRow,
    LineParser,
    count_rows,
    line_chunks,
    read_items,
)
from textclf.batch.status import Progress
from textclf.errors import DataError, TextclfError


@dataclass(frozen=True)
class BatchSummary:
    output: Path
    scored: int
    skipped: int
    seconds: float
    ready_seconds: float | None = None  # until every scoring process had the model (local)
    earlier: int = 0  # rows a resumed job found scored: not this run's work

    @property
    def rows_per_second(self) -> float:
        """The whole pass's rate, start-up included: what a user waits for."""
        return (self.scored - self.earlier) / self.seconds if self.seconds > 0 else 0.0

    @property
    def scoring_rows_per_second(self) -> float:
        """The rate once the model is loaded everywhere: what a longer input approaches (start-up
        is a fixed ~0.3 s with forked workers, ~0.5 s with spawned ones)."""
        scoring = self.seconds - (self.ready_seconds or 0.0)
        return (self.scored - self.earlier) / scoring if scoring > 0 else 0.0

    def line(self) -> str:
        after = (
            f"; {self.scoring_rows_per_second:,.0f} rows/s after {self.ready_seconds:.1f}s start-up"
            if self.ready_seconds is not None
            else ""
        )
        resumed = f" ({self.scored - self.earlier:,} this run)" if self.earlier else ""
        return (
            f"{self.scored:,} rows scored{resumed}, {self.skipped:,} skipped -> {self.output} "
            f"({self.seconds:.1f}s, {self.rows_per_second:,.0f} rows/s{after})"
        )


@dataclass
class _Meta:
    items: int
    bad: list[BadRow]


def errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.jsonl")


def usable_workers(config: BatchConfig) -> int:
    return usable_cores() if config.workers is None else config.workers


def usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, taskset), where the system
    says (Linux); else all of them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_batch(
    model: Path,
    input_path: Path,
    output: Path,
    config: BatchConfig = BatchConfig(),
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> BatchSummary:
    """Score every row of `input_path` into `output` (see `textclf batch --help`)."""
    in_fmt, out_fmt = input_format(input_path, config.format), output_format(output)
    if output.exists() and not overwrite:
        raise TextclfError(f"{output} exists; pass --overwrite to replace it")
    if not input_path.is_file():
        raise DataError("no such input file", path=input_path)
    if config.engine == "ray":
        if resume:
            raise TextclfError("--resume works with the local engine (Ray retries on its own)")
        from textclf.batch.ray_engine import run_ray

        return run_ray(model, input_path, output, config, in_fmt, out_fmt, progress=progress)
    from textclf.manifest import read_manifest

    version = str(read_manifest(model)["version"])
    options = {**asdict(config), "workers": None, "engine": None, "out": out_fmt, "in": in_fmt}
    stamp = checkpoint.fingerprint(version, input_path, options)
    state_path = checkpoint.path_for(output)
    state = checkpoint.load(state_path, stamp) if resume else None
    if state is None:
        state_path.unlink(missing_ok=True)
        state = checkpoint.Checkpoint(stamp, 0, 0, 0, 0, None)
        fresh = True
    else:
        fresh = False
    return _Job(model, input_path, output, config, in_fmt, out_fmt, state, fresh).run(progress)


class _Job:
    def __init__(
        self,
        model: Path,
        input_path: Path,
        output: Path,
        config: BatchConfig,
        in_fmt: str,
        out_fmt: str,
        state: checkpoint.Checkpoint,
        fresh: bool,
    ) -> None:
        self.model, self.input, self.output, self.config = model, input_path, output, config
        self.in_fmt, self.out_fmt, self.state, self.fresh = in_fmt, out_fmt, state, fresh
        self.sink: Sink = (
            ParquetSink(output)
            if out_fmt == "parquet"
            else TextSink(output, csv_header(config.top_k) if out_fmt == "csv" else b"")
        )
        self.errors = TextSink(errors_path(output)) if config.on_error == "skip" else None
        self.metas: deque[_Meta] = deque()

    def run(self, progress: bool) -> BatchSummary:
        start = time.monotonic()
        with self._engine() as engine:  # first: workers fork before a file or a thread is open
            ready = time.monotonic() - start
            state = self._stream(engine, progress)
        if self.errors is not None:
            self.errors.finish()
        self.sink.finish()
        checkpoint.path_for(self.output).unlink(missing_ok=True)
        elapsed = time.monotonic() - start
        return BatchSummary(
            self.output, state.scored, state.skipped, elapsed, ready, self.state.scored
        )

    def _parser(self) -> LineParser:
        c = self.config
        return LineParser(self.input, self.in_fmt, c.text_column, c.id_column)

    def _engine(self) -> InProcess | WorkerPool:
        parse = self._parser() if self.in_fmt in LINE_FORMATS else None
        spec = ScorerSpec(self.model, self.config.top_k, self.out_fmt, parse)
        workers = usable_workers(self.config)
        return InProcess(spec) if workers == 0 else WorkerPool(spec, workers)

    def _stream(self, engine: InProcess | WorkerPool, progress: bool) -> checkpoint.Checkpoint:
        """Every chunk scored and committed; the final state (the outputs not yet renamed)."""
        state = self.state
        self.sink.reopen(None if self.fresh else state.output)
        if self.errors is not None:
            self.errors.reopen(None if self.fresh else state.errors)
        bar: Progress | None = None
        try:
            total = count_rows(self.input, self.in_fmt) if progress else None  # a read of it all
            bar = Progress(total, done=state.items, enabled=progress)
            for scored in engine.score(self._chunks(state.items)):
                state = self._commit(state, scored)
                bar.update(self.last_items)
        except DataError:
            self._discard()
            raise
        finally:
            if bar is not None:
                bar.close()
            self._close()
        return state

    def _chunks(self, skip: int) -> Iterator[Chunk]:
        """The input's chunks after its first `skip` rows (those a resumed job has written)."""
        size = self.config.chunk_size
        if self.in_fmt in LINE_FORMATS:
            chunks = line_chunks(self.input, self.in_fmt, size, skip)
            for number, (n_rows, lines) in enumerate(chunks):
                self.metas.append(_Meta(n_rows, []))
                yield number, lines
            return
        c = self.config
        items = islice(read_items(self.input, self.in_fmt, c.text_column, c.id_column), skip, None)
        number = 0
        while batch := list(islice(items, size)):
            rows = [item for item in batch if not isinstance(item, BadRow)]
            self.metas.append(_Meta(len(batch), [b for b in batch if isinstance(b, BadRow)]))
            yield number, Texts([r.id for r in rows], [r.text for r in rows])
            number += 1

    def _commit(self, state: checkpoint.Checkpoint, scored: Scored) -> checkpoint.Checkpoint:
        data, bad = scored
        meta = self.metas.popleft()
        meta.bad += bad
        if meta.bad and self.errors is None:
            raise DataError(
                f"{meta.bad[0].message} (--on-error skip sets such rows aside and goes on)"
            )
        self.sink.write(data)
        errors_state = None
        if self.errors is not None:
            lines = "".join(json.dumps({"row": b.row, "error": b.message}) + "\n" for b in meta.bad)
            self.errors.write(lines.encode())
            errors_state = self.errors.commit()
        state = checkpoint.Checkpoint(
            fingerprint=state.fingerprint,
            items=state.items + meta.items,
            scored=state.scored + meta.items - len(meta.bad),
            skipped=state.skipped + len(meta.bad),
            output=self.sink.commit(),
            errors=errors_state,
        )
        checkpoint.save(checkpoint.path_for(self.output), state)
        self.last_items = meta.items
        return state

    def _close(self) -> None:
        for sink in (self.sink, self.errors):
            close = getattr(sink, "close", None)
            if close is not None:
                close()

    def _discard(self) -> None:
        self.sink.discard()
        if self.errors is not None:
            self.errors.discard()
        checkpoint.path_for(self.output).unlink(missing_ok=True)
