"""Readers: each yields, in input order, a `Row` to score or a `BadRow` saying what is wrong.

A bad row never stops a reader: the job decides (stop or skip). `row` counts data rows from 0
(it is the default id); messages name the line a user would open in an editor, or the row of a
Parquet file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from textclf.errors import DataError

# Long documents easily exceed the csv module's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 2**31 - 1
_PARQUET_BATCH = 4096


class Row(NamedTuple):
    row: int
    id: Any
    text: str


class BadRow(NamedTuple):
    row: int
    message: str  # "FILE, line N: what is wrong"


Item = Row | BadRow


def read_items(path: Path, fmt: str, text_column: str, id_column: str | None) -> Iterator[Item]:
    if not path.is_file():
        raise DataError("no such input file", path=path)
    if fmt == "parquet":
        return _parquet(path, text_column, id_column)
    if fmt in ("csv", "tsv"):
        return _delimited(path, fmt, text_column, id_column)
    if fmt == "jsonl":
        return _jsonl(path, text_column, id_column)
    return _text_lines(path)


def count_rows(path: Path, fmt: str) -> int | None:
    """The number of rows, for the progress bar's ETA (an estimate for CSV: quoted newlines)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            lines += block.count(b"\n")
    return max(lines - (1 if fmt in ("csv", "tsv") else 0), 0)


def _text_lines(path: Path) -> Iterator[Item]:
    with path.open(encoding="utf-8-sig", newline="\n") as handle:
        for number, line in enumerate(handle):
            yield Row(number, number, line.rstrip("\r\n"))


def _jsonl(path: Path, text_column: str, id_column: str | None) -> Iterator[Item]:
    """One JSON object per line; blank lines are not rows."""
    row = 0
    with path.open(encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield BadRow(row, f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
            else:
                yield _from_record(record, row, where, text_column, id_column)
            row += 1


def _delimited(path: Path, fmt: str, text_column: str, id_column: str | None) -> Iterator[Item]:
    dialect = "excel-tab" if fmt == "tsv" else "excel"
    previous = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, dialect)
            columns = [name.strip() for name in next(reader, [])]
            for name in (text_column, id_column):
                if name is not None and name not in columns:
                    raise DataError(f"no column {name!r}; columns found: {columns}", path=path)
            row, line = 0, reader.line_num
            try:
                for fields in reader:
                    start, line = line + 1, reader.line_num
                    if not fields:
                        continue
                    record = dict(zip(columns, fields, strict=False))
                    yield _from_record(record, row, f"{path}, line {start}", text_column, id_column)
                    row += 1
            except csv.Error as exc:
                raise DataError(f"malformed {fmt.upper()} near line {reader.line_num}: {exc}",
                                path=path) from None  # fmt: skip
    finally:
        csv.field_size_limit(previous)


def _parquet(path: Path, text_column: str, id_column: str | None) -> Iterator[Item]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    wanted = [c for c in (text_column, id_column) if c is not None]
    for name in wanted:
        if name not in names:
            raise DataError(f"no column {name!r}; columns found: {names}", path=path)
    row = 0
    for batch in file.iter_batches(batch_size=_PARQUET_BATCH, columns=list(dict.fromkeys(wanted))):
        for record in batch.to_pylist():
            yield _from_record(record, row, f"{path}, row {row}", text_column, id_column)
            row += 1


def _from_record(
    record: Any, row: int, where: str, text_column: str, id_column: str | None
) -> Item:
    if not isinstance(record, dict):
        return BadRow(row, f"{where}: expected a JSON object, got {type(record).__name__}")
    if text_column not in record or record[text_column] is None:
        return BadRow(row, f"{where}: no {text_column!r} value; keys found: {sorted(record)}")
    text = record[text_column]
    if not isinstance(text, str):
        return BadRow(row, f"{where}: {text_column!r} must be a string, got {type(text).__name__}")
    if id_column is None:
        return Row(row, row, text)
    if record.get(id_column) is None:
        return BadRow(row, f"{where}: no {id_column!r} value (the --id-column)")
    return Row(row, record[id_column], text)
