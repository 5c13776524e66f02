"""Readers: each yields, in input order, a `Row` to score or a `BadRow` saying what is wrong.

A bad row never stops a reader: the job decides (stop or skip). `row` counts data rows from 0
(it is the default id); messages name the line a user would open in an editor, or the row of a
Parquet file.

JSON Lines and plain text are cut into `Lines` chunks of raw bytes and parsed by `LineParser`
where they are scored: in a batch job's worker processes, so the parent only splits lines
(decoding JSON took ~20 us a row, a fifth of scoring it, on the core the workers need). CSV
(quoted fields may hold newlines) and Parquet are parsed as they are read.
"""

from __future__ import annotations

import csv
import json
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, NamedTuple

from textclf.errors import DataError

# Long documents easily exceed the csv module's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 2**31 - 1
_READ_BATCH = 4096
_READ_BYTES = 1 << 20  # lines `line_chunks` reads at once
LINE_FORMATS = ("jsonl", "txt")
_BOM = b"\xef\xbb\xbf"


class Row(NamedTuple):
    row: int
    id: Any
    text: str


class BadRow(NamedTuple):
    row: int
    message: str  # "FILE, line N: what is wrong"


Item = Row | BadRow


class Lines(NamedTuple):
    """Consecutive raw lines of a JSON Lines or text file, to be parsed by `LineParser`."""

    first_line: int  # the line number (from 1) of lines[0]
    first_row: int  # the row number of the first row among them
    lines: list[bytes]  # as read, newline included; a blank JSON line is not a row


@dataclass(frozen=True)
class LineParser:
    """`Lines` -> items, in a worker or in the reader (`read_items`): one definition of a row."""

    path: Path
    fmt: str
    text_column: str
    id_column: str | None

    def __call__(self, chunk: Lines) -> list[Item]:
        out: list[Item] = []
        row = chunk.first_row
        for line_no, raw in enumerate(chunk.lines, start=chunk.first_line):
            if self.fmt == "jsonl" and _blank(raw):
                continue
            out.append(self._item(raw, row, f"{self.path}, line {line_no}"))
            row += 1
        return out

    def _item(self, raw: bytes, row: int, where: str) -> Item:
        try:
            if self.fmt == "txt":
                return Row(row, row, raw.decode("utf-8").rstrip("\r\n"))
            record = json.loads(raw.decode("utf-8"))  # bytes would let JSON guess UTF-16/32
        except UnicodeDecodeError as exc:
            return BadRow(row, f"{where}: not valid UTF-8 (byte {exc.start + 1})")
        except json.JSONDecodeError as exc:
            return BadRow(row, f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
        return _from_record(record, row, where, self.text_column, self.id_column)


def _blank(line: bytes) -> bool:
    """A JSON line that is not a row: only whitespace, Unicode's included (U+00A0, U+3000),
    as `str.strip` sees it. Decodes only a line whose first non-blank byte could start such a
    space (never a JSON object's `{`): the parent splits every line of the input, and a line
    opening an object, nearly every one, is answered before stripping it."""
    if line[:1] == b"{":
        return False
    stripped = line.strip()
    if not stripped:
        return True
    if stripped[0] < 0x80 and not 0x1C <= stripped[0] <= 0x1F:  # \x1c-\x1f: str whitespace
        return False
    return not line.decode("utf-8", "replace").strip()


def line_chunks(path: Path, fmt: str, rows: int, skip: int = 0) -> Iterator[tuple[int, Lines]]:
    """(rows in it, chunk) for chunks of `rows` rows each, after the first `skip` rows (a
    resumed job's). Only splits lines, a batch at a time (`readlines` splits in C, bisections
    of the running row count place the cuts): 1.7 us a line where a loop over the lines took
    2.4, in the one process that feeds every worker."""
    chunk: list[bytes] = []
    first = (1, 0)  # (line number, row number) of the chunk's first line
    row, number = 0, 1  # rows before the batch; the batch's first line number
    with path.open("rb") as handle:
        while batch := handle.readlines(_READ_BYTES):
            if number == 1 and batch[0].startswith(_BOM):
                batch[0] = batch[0][len(_BOM) :]
                if not batch[0]:  # a file that is only a BOM has no rows
                    del batch[0]
                    number = 2
            counted = _rows_before(batch, fmt, row)  # counted[i]: rows before batch[i]
            start = bisect_left(counted, skip, 0, len(batch)) if row < skip else 0
            while start < len(batch):
                if not chunk:
                    first = (number + start, counted[start])
                end = bisect_left(counted, first[1] + rows, start + 1, len(batch) + 1)
                chunk += batch[start:end]
                if end <= len(batch):  # the line before `end` is the chunk's last row
                    yield rows, Lines(*first, chunk)
                    chunk = []
                start = end
            row, number = counted[-1], number + len(batch)
    if chunk:
        yield row - first[1], Lines(*first, chunk)


def _rows_before(batch: list[bytes], fmt: str, row: int) -> list[int]:
    """Rows before each line of `batch`, and after its last: a text line is a row, a JSON line
    unless blank."""
    if fmt == "txt":
        return list(range(row, row + len(batch) + 1))
    return list(accumulate((not _blank(line) for line in batch), initial=row))


def read_items(path: Path, fmt: str, text_column: str, id_column: str | None) -> Iterator[Item]:
    if not path.is_file():
        raise DataError("no such input file", path=path)
    if fmt == "parquet":
        return _parquet(path, text_column, id_column)
    if fmt in ("csv", "tsv"):
        return _delimited(path, fmt, text_column, id_column)
    parse = LineParser(path, fmt, text_column, id_column)
    return chain.from_iterable(parse(chunk) for _, chunk in line_chunks(path, fmt, _READ_BATCH))


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
    for batch in file.iter_batches(batch_size=_READ_BATCH, columns=list(dict.fromkeys(wanted))):
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
