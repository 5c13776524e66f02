"""The batch job's options: one frozen dataclass, from which `textclf batch`'s flags derive."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from textclf.config import doc
from textclf.errors import ConfigError

INPUT_FORMATS = ("jsonl", "csv", "tsv", "parquet", "txt")
OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
    ".parquet": "parquet", ".txt": "txt",
}  # fmt: skip


@dataclass(frozen=True)
class BatchConfig:
    """How to read, score and write one file. `workers=None` means one per usable core."""

    format: str | None = field(
        default=None,
        metadata=doc("input format", none="from the input's extension", choices=INPUT_FORMATS),
    )
    text_column: str = field(default="text", metadata=doc("column (JSON key) holding the text"))
    id_column: str | None = field(
        default=None,
        metadata=doc("column copied to the output's id", none="the row number, from 0"),
    )
    top_k: int = field(default=1, metadata=doc("labels and scores per row"))
    workers: int | None = field(
        default=None,
        metadata=doc(
            "scoring processes (0: score in this process) or Ray actors",
            none="one per usable core",
        ),
    )
    on_error: Literal["stop", "skip"] = field(
        default="stop",
        metadata=doc("on a bad row: stop, or skip it into OUTPUT.errors.jsonl"),
    )
    chunk_size: int = field(
        default=2048, metadata=doc("rows per chunk: the unit of work, of progress and of resume")
    )
    engine: Literal["local", "ray"] = field(
        default="local", metadata=doc("local processes, or Ray Data (the 'ray' extra)")
    )
    ray_address: str | None = field(
        default=None,
        metadata=doc("Ray cluster to join", none="start a local Ray with --workers CPUs"),
    )

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {self.top_k}")
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")


def input_format(path: Path, given: str | None) -> str:
    """`given`, else the one the extension names; a ConfigError says what to pass otherwise."""
    fmt = given or _SUFFIXES.get(path.suffix.lower())
    if fmt not in INPUT_FORMATS:
        raise ConfigError(
            f"{path}: cannot tell the input format from {path.suffix or '(no extension)'!r}; "
            f"pass --format {{{','.join(INPUT_FORMATS)}}}"
        )
    return fmt


def output_format(path: Path) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(
            f"{path}: the output must end in .jsonl, .csv or .parquet, got "
            f"{path.suffix or '(no extension)'!r}"
        )
    return fmt
