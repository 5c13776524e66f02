"""Reading user data: a CSV, TSV or JSONL file, or a folder with one sub-folder per label.

Everything is validated on the way in, because a bad row found here costs seconds while one found
mid-training costs minutes and arrives as an unreadable stack trace; every problem becomes a
`DataError` naming the file, the row and what is wrong.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textclf.corpus import Corpus
from textclf.errors import DataError
from textclf.progress import bar

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SUPPORTED = ".csv, .tsv, .jsonl/.ndjson, or a folder with one sub-folder per label"
# Long documents easily exceed the csv module's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 2**31 - 1

# (path, format, text column, label column, progress) -> (texts, labels)
_Reader = Callable[[Path, str, str, str, bool], tuple[list[str], list[str]]]


def read_user_data(
    path: Path, *, text_column: str = "text", label_column: str = "label", progress: bool = False
) -> tuple[Corpus, str]:
    """Read a CSV/TSV/JSONL file or a label-per-folder tree into a corpus; returns its format
    ("csv", "tsv", "jsonl" or "folder"). Columns (JSON keys) name the text and the label."""
    if not path.exists():
        raise DataError(f"no such file or folder; expected {_SUPPORTED}", path=path)
    if path.is_dir():
        return _read_label_folders(path, progress=progress), "folder"
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"unsupported file type {path.suffix or '(none)'!r}; use {_SUPPORTED}", path=path
        )
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=path)
    reader: _Reader = _read_jsonl if fmt == "jsonl" else _read_delimited
    try:
        texts, labels = reader(path, fmt, text_column, label_column, progress)
    except UnicodeDecodeError:
        raise _encoding_error(path) from None
    if not texts:
        raise DataError("no data rows", path=path)
    return Corpus(texts=texts, labels=labels), fmt


def _read_delimited(
    path: Path, fmt: str, text_column: str, label_column: str, progress: bool
) -> tuple[list[str], list[str]]:
    """CSV/TSV with a header row; `row` in errors counts data rows from 1 (header excluded)."""
    texts: list[str] = []
    labels: list[str] = []
    dialect = "excel-tab" if fmt == "tsv" else "excel"
    with path.open(encoding="utf-8-sig", newline="") as handle, _large_csv_fields():
        reader = csv.reader(handle, dialect)
        try:
            header = next(reader, None)
            if not header:
                raise DataError("file is empty", path=path)
            columns = [name.strip() for name in header]
            text_at = _column_index(columns, text_column, path)
            label_at = _column_index(columns, label_column, path)
            row, line = 0, reader.line_num
            for fields in bar(reader, desc=path.name, unit="rows", enabled=progress):
                start, line = line + 1, reader.line_num
                if not fields:  # blank line
                    continue
                row += 1
                where = f" (line {start})"
                text = fields[text_at] if text_at < len(fields) else None
                label = fields[label_at] if label_at < len(fields) else None
                texts.append(_valid_text(text, text_column, path, row, where))
                labels.append(_valid_label(label, label_column, path, row, where))
        except csv.Error as exc:
            raise DataError(
                f"malformed {fmt.upper()} near line {reader.line_num}: {exc}", path=path
            ) from exc
    return texts, labels


def _read_jsonl(
    path: Path, fmt: str, text_column: str, label_column: str, progress: bool
) -> tuple[list[str], list[str]]:
    """One JSON object per line; `row` in errors is the line number; blank lines are skipped."""
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8-sig") as handle:
        lines = bar(handle, desc=path.name, unit="lines", enabled=progress)
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            record = _json_record(line, path, line_no)
            for column in (text_column, label_column):
                if column not in record:
                    raise DataError(
                        f"no {column!r} key; keys found: {sorted(record)}", path=path, row=line_no
                    )
            texts.append(_valid_text(record[text_column], text_column, path, line_no))
            labels.append(_valid_label(record[label_column], label_column, path, line_no))
    return texts, labels


def _json_record(line: str, path: Path, line_no: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", path=path, row=line_no
        ) from None
    if not isinstance(record, dict):
        raise DataError(
            f"expected a JSON object, got {type(record).__name__}", path=path, row=line_no
        )
    return record


def _read_label_folders(root: Path, *, progress: bool) -> Corpus:
    """`root/<label>/<document>`: each sub-folder names a label, each file in it is one text."""
    label_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not label_dirs:
        raise DataError(
            "folder has no label sub-folders; expected one sub-folder per label holding one "
            "UTF-8 text file per document",
            path=root,
        )
    files: list[tuple[str, Path]] = []
    for folder in label_dirs:
        docs = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not docs:
            raise DataError(f"label folder {folder.name!r} holds no documents", path=folder)
        files.extend((folder.name, doc) for doc in docs)
    texts, labels = [], []
    for label, file in bar(files, desc=root.name, unit="files", enabled=progress):
        texts.append(_read_document(file))
        labels.append(label)
    return Corpus(texts=texts, labels=labels)


def _read_document(file: Path) -> str:
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(_encoding_message(exc.start, line), path=file) from None
    if not text.strip():
        raise DataError("empty document", path=file)
    return text


def _valid_text(value: Any, column: str, path: Path, row: int, where: str = "") -> str:
    if value is None:
        raise DataError(f"missing text in column {column!r}{where}", path=path, row=row)
    if not isinstance(value, str):
        raise DataError(
            f"text in column {column!r} must be a string, got {type(value).__name__}{where}",
            path=path,
            row=row,
        )
    if not value.strip():
        raise DataError(f"empty text in column {column!r}{where}", path=path, row=row)
    return value


def _valid_label(value: Any, column: str, path: Path, row: int, where: str = "") -> str:
    """Labels always become strings: JSON 1 and CSV "1" must name the same class."""
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, int | float):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"missing label in column {column!r}{where}", path=path, row=row)
    if not isinstance(value, str):
        raise DataError(
            f"label in column {column!r} must be a string or number, got "
            f"{type(value).__name__}{where}",
            path=path,
            row=row,
        )
    return value.strip()


def _column_index(columns: list[str], name: str, path: Path) -> int:
    if name not in columns:
        raise DataError(f"no column {name!r}; columns found: {columns}", path=path)
    return columns.index(name)


@contextmanager
def _large_csv_fields() -> Iterator[None]:
    previous = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _encoding_error(path: Path) -> DataError:
    """Locate the first non-UTF-8 byte: a text-mode reader only knows its buffer position."""
    offset = 0
    with path.open("rb") as handle:
        # Splitting on b"\n" is safe: that byte never occurs inside a multi-byte UTF-8 sequence.
        for line_no, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return DataError(_encoding_message(offset + exc.start, line_no), path=path)
            offset += len(raw)
    return DataError(_encoding_message(offset, line_no=None), path=path)


def _encoding_message(offset: int, line_no: int | None) -> str:
    where = f"byte {offset}" + ("" if line_no is None else f" (line {line_no})")
    return (
        f"not valid UTF-8 at {where}; re-encode the file as UTF-8, "
        "e.g. `iconv -f latin1 -t utf-8 in > out`"
    )
