"""One batch job: check the paths, resume or start, stream chunks through an engine, commit.

Chunks are cut from the input in the main process, bad rows are stopped on or set aside here,
and results are written in input order; after each chunk the output and the errors file are
made durable, then the checkpoint, so a kill at any instant leaves a resumable prefix.
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
from textclf.batch.local import Chunk, ChunkScorer, score_in_process, score_in_workers
from textclf.batch.rows import csv_header
from textclf.batch.sinks import ParquetSink, Sink, TextSink
from textclf.batch.sources import BadRow, Item, count_rows, read_items
from textclf.batch.status import Progress
from textclf.errors import DataError, TextclfError


@dataclass(frozen=True)
class BatchSummary:
    output: Path
    scored: int
    skipped: int
    seconds: float

    def line(self) -> str:
        rate = self.scored / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.scored:,} rows scored, {self.skipped:,} skipped -> {self.output} "
            f"({self.seconds:.1f}s, {rate:,.0f} rows/s)"
        )


@dataclass
class _Meta:
    items: int
    bad: list[BadRow]


def errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.jsonl")


def usable_workers(config: BatchConfig) -> int:
    return len(os.sched_getaffinity(0)) if config.workers is None else config.workers


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
    from textclf.artifact import read_manifest

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
        start, state = time.monotonic(), self.state
        self.sink.reopen(None if self.fresh else state.output)
        if self.errors is not None:
            self.errors.reopen(None if self.fresh else state.errors)
        bar = Progress(count_rows(self.input, self.in_fmt), done=state.items, enabled=progress)
        try:
            for data in self._scored(islice(self._items(), state.items, None)):
                state = self._commit(state, data)
                bar.update(self.last_items)
        except DataError:
            self._discard()
            raise
        finally:
            bar.close()
            self._close()
        if self.errors is not None:
            self.errors.finish()
        self.sink.finish()
        checkpoint.path_for(self.output).unlink(missing_ok=True)
        elapsed = time.monotonic() - start
        return BatchSummary(self.output, state.scored, state.skipped, elapsed)

    def _items(self) -> Iterator[Item]:
        c = self.config
        return read_items(self.input, self.in_fmt, c.text_column, c.id_column)

    def _scored(self, items: Iterator[Item]) -> Iterator[bytes]:
        workers = usable_workers(self.config)
        chunks = self._chunks(items)
        if workers == 0:
            return score_in_process(
                chunks, ChunkScorer(self.model, self.config.top_k, self.out_fmt)
            )
        return score_in_workers(chunks, self.model, self.config.top_k, self.out_fmt, workers)

    def _chunks(self, items: Iterator[Item]) -> Iterator[Chunk]:
        number = 0
        while batch := list(islice(items, self.config.chunk_size)):
            bad = [item for item in batch if isinstance(item, BadRow)]
            if bad and self.errors is None:
                raise DataError(
                    f"{bad[0].message} (--on-error skip sets such rows aside and goes on)"
                )
            rows = [item for item in batch if not isinstance(item, BadRow)]
            self.metas.append(_Meta(len(batch), bad))
            yield number, [r.id for r in rows], [r.text for r in rows]
            number += 1

    def _commit(self, state: checkpoint.Checkpoint, data: bytes) -> checkpoint.Checkpoint:
        meta = self.metas.popleft()
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
