"""`textclf batch MODEL INPUT --output OUTPUT`: score a large file, resumably.

Flags derive from `textclf.batch.BatchConfig` (one definition per option). SIGINT and SIGTERM
stop the job between chunks' writes with exit code 130; the output keeps its temporary name and
`--resume` continues from the last committed chunk.
"""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Any

from textclf.batch.config import BatchConfig
from textclf.extras import require

EXIT_INTERRUPTED = 130


def register(sub: Any) -> None:
    from training.cli import _add_options  # lazy: training.cli imports this module

    p = sub.add_parser(
        "batch",
        help="score a large file (JSON Lines, CSV, TSV, Parquet, text) into an output file",
        description="Score every row of INPUT into OUTPUT (JSON Lines, CSV or Parquet, by "
        "extension), in input order, with several processes; resumable after a kill.",
    )
    p.add_argument("model", type=Path, help="artifact folder")
    p.add_argument("input", type=Path, help="file to score")
    p.add_argument("--output", "-o", type=Path, required=True, help="file to write")
    _add_options(p, BatchConfig)
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run of the same command"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_batch)


def _batch(args: argparse.Namespace) -> int:
    from training.cli import _config

    config: BatchConfig = _config(BatchConfig, args)
    require("ray" if config.engine == "ray" else "train", f"batch --engine {config.engine}")
    if args.output.suffix.lower() == ".parquet" or config.format == "parquet":
        require("parquet", "batch with Parquet files")
    from textclf.batch.job import run_batch

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with _one_blas_thread(config.workers == 0):
            summary = run_batch(
                args.model,
                args.input,
                args.output,
                config,
                resume=args.resume,
                overwrite=args.overwrite,
                progress=not args.quiet,
            )
    except KeyboardInterrupt:
        print(
            f"textclf: batch interrupted; {args.output} not written. Rerun with --resume to go on",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"textclf batch: {summary.line()}")
    return 0


def _one_blas_thread(in_process: bool) -> AbstractContextManager[object]:
    """Scoring in this process (--workers 0) sums as a worker does, on one BLAS thread, so a
    job resumed with other --workers writes the same bytes."""
    if not in_process:
        return nullcontext()
    from textclf import host

    return host.one_blas_thread()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
