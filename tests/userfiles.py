"""Writers for the user data files tests read (CSV, TSV, JSONL, label folders), and a check of
the `DataError` a bad one raises."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from textclf.errors import DataError

LABELS = ("neg", "neutral", "pos")


def rows(n_per_label: int = 20) -> list[tuple[str, str]]:
    """Distinct texts, evenly spread over LABELS, interleaved like real data."""
    return [
        (f'document {i} about {label}, with "quotes" and commas', label)
        for i in range(n_per_label)
        for label in LABELS
    ]


def write_delimited(
    path: Path, data: list[tuple[str, str]], columns: tuple[str, str] = ("text", "label")
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, "excel-tab" if path.suffix == ".tsv" else "excel")
        writer.writerow(columns)
        writer.writerows(data)
    return path


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_folder(root: Path, data: list[tuple[str, str]]) -> Path:
    for i, (text, label) in enumerate(data):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    return root


def expect_error(
    run: Callable[[], object], path: Path, *fragments: str, row: int | None = None
) -> None:
    """`run()` raises a DataError naming `path`, holding every fragment, and naming `row`."""
    with pytest.raises(DataError) as info:
        run()
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.row == row, message
    if row is not None:
        assert f"row {row}" in message, message
