"""Tests for textclf.datafiles: real files on disk, and every bad-data case names the file, the
row and the problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.userfiles import LABELS, expect_error, rows, write_delimited, write_folder, write_jsonl
from textclf.corpus import Corpus
from textclf.datafiles import read_user_data

# --- formats -------------------------------------------------------------------------------------


def test_csv_with_custom_columns(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "data.csv", rows(), columns=("body", "category"))
    corpus, fmt = read_user_data(path, text_column="body", label_column="category")
    assert corpus == Corpus(texts=[t for t, _ in rows()], labels=[label for _, label in rows()])
    assert fmt == "csv"


def test_tsv_keeps_tabs_newlines_and_quotes(tmp_path: Path) -> None:
    data = [(f'line one\twith tab {i}\nline "two"', label) for i, label in enumerate(LABELS * 10)]
    corpus, fmt = read_user_data(write_delimited(tmp_path / "data.tsv", data))
    assert corpus.texts == [text for text, _ in data]
    assert fmt == "tsv"


def test_jsonl_labels_become_strings(tmp_path: Path) -> None:
    records: list[dict[str, object]] = [
        {"review": f"text {i}", "stars": i % 3, "id": i} for i in range(30)
    ]
    path = write_jsonl(tmp_path / "data.ndjson", records)
    path.write_text(path.read_text() + "\n\n", encoding="utf-8")  # trailing blank lines are fine
    corpus, fmt = read_user_data(path, text_column="review", label_column="stars")
    assert corpus.labels == [str(i % 3) for i in range(30)]
    assert fmt == "jsonl"


def test_csv_and_jsonl_labels_agree(tmp_path: Path) -> None:
    csv_file = write_delimited(tmp_path / "a.csv", [("x", "1"), ("y", "2")])
    jsonl_file = write_jsonl(
        tmp_path / "b.jsonl", [{"text": "x", "label": 1}, {"text": "y", "label": 2}]
    )
    assert read_user_data(csv_file)[0] == read_user_data(jsonl_file)[0]


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\r\nhéllo,a\r\nwörld,b\r\n".encode("utf-8-sig"))
    corpus, _ = read_user_data(path)
    assert corpus == Corpus(texts=["héllo", "wörld"], labels=["a", "b"])


def test_folder_format(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", [(f"naïve text {t}", label) for t, label in rows()])
    (root / "pos" / ".DS_Store").write_bytes(b"\xff\xfe junk")  # hidden files are skipped
    corpus, fmt = read_user_data(root)
    assert corpus.labels == sorted(label for _, label in rows())  # folder by folder
    assert all(text.startswith("naïve text") for text in corpus.texts)
    assert fmt == "folder"


@pytest.mark.parametrize(("name", "unit"), [("d.csv", "rows"), ("d.jsonl", "lines")])
def test_progress_off_a_terminal_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, unit: str
) -> None:
    data = rows()
    if name.endswith(".csv"):
        path = write_delimited(tmp_path / name, data)
    else:
        path = write_jsonl(tmp_path / name, [{"text": t, "label": label} for t, label in data])
    read_user_data(path, progress=True)
    err = capsys.readouterr().err
    assert re.fullmatch(rf"{name}: 60 {unit} in \d+\.\ds\n", err), err


# --- every bad-data case names the file, the row and the problem ---------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    expect_error(lambda: read_user_data(path), path, "no such file")


def test_missing_column_lists_columns_found(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "d.csv", rows(), columns=("body", "label"))
    expect_error(lambda: read_user_data(path), path, "no column 'text'", "['body', 'label']")


def test_missing_jsonl_key(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"txt": "b", "label": "y"}]
    )
    expect_error(lambda: read_user_data(path), path, "no 'text' key", "['label', 'txt']", row=2)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.csv", "", "file is empty"),
        ("empty.jsonl", "", "file is empty"),
        ("header.csv", "text,label\n", "no data rows"),
        ("blank.jsonl", "\n\n  \n", "no data rows"),
        ("blank.tsv", "\n", "file is empty"),
    ],
)
def test_empty_files(tmp_path: Path, name: str, content: str, problem: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    expect_error(lambda: read_user_data(path), path, problem)


def test_empty_text_names_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text,label\na,x\n\n"multi\nline",y\n"  ",x\n', encoding="utf-8")
    expect_error(
        lambda: read_user_data(path), path, "empty text in column 'text'", "(line 6)", row=3
    )


def test_short_csv_row_is_missing_label(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nno label here\n", encoding="utf-8")
    expect_error(lambda: read_user_data(path), path, "missing label in column 'label'", row=2)


def test_empty_label(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\na\tx\nb\t \n", encoding="utf-8")
    expect_error(lambda: read_user_data(path), path, "missing label", row=2)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"text": None, "label": "x"}, "missing text"),
        ({"text": "   ", "label": "x"}, "empty text"),
        ({"text": 42, "label": "x"}, "must be a string, got int"),
        ({"text": "b", "label": None}, "missing label"),
        ({"text": "b", "label": ["x"]}, "must be a string or number, got list"),
    ],
)
def test_bad_jsonl_values_name_the_line(
    tmp_path: Path, record: dict[str, object], problem: str
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps({"text": "a", "label": "x"}) + "\n\n" + json.dumps(record) + "\n",
        encoding="utf-8",
    )
    expect_error(lambda: read_user_data(path), path, problem, row=3)


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", label: y}\n', encoding="utf-8")
    expect_error(lambda: read_user_data(path), path, "invalid JSON", row=2)


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('["a", "x"]\n', encoding="utf-8")
    expect_error(lambda: read_user_data(path), path, "expected a JSON object, got list", row=1)


def test_undecodable_csv_names_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    head = b"text,label\na,x\n"
    path.write_bytes(head + b"caf\xe9,y\n")
    expect_error(
        lambda: read_user_data(path),
        path,
        "not valid UTF-8",
        f"byte {len(head) + 3}",
        "line 3",
        "re-encode",
    )


def test_undecodable_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "x"}\n{"text": "\xff", "label": "y"}\n')
    expect_error(lambda: read_user_data(path), path, "not valid UTF-8", "byte 39", "line 2")


def test_undecodable_document_in_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", rows(3))
    bad = root / "pos" / "zz-latin1.txt"
    bad.write_bytes(b"line one\nna\xefve\n")
    expect_error(lambda: read_user_data(root), bad, "not valid UTF-8", "byte 11", "line 2")


@pytest.mark.parametrize("name", ["data.xlsx", "data.txt", "data"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("text,label\na,b\n", encoding="utf-8")
    expect_error(lambda: read_user_data(path), path, "unsupported file type", ".csv, .tsv, .jsonl")


def test_folder_without_label_folders(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("loose file", encoding="utf-8")
    expect_error(lambda: read_user_data(tmp_path), tmp_path, "no label sub-folders")


def test_empty_label_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", rows(3))
    (root / "unused").mkdir()
    expect_error(lambda: read_user_data(root), root / "unused", "'unused' holds no documents")


def test_empty_document_in_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", rows(3))
    (root / "neg" / "blank.txt").write_text(" \n", encoding="utf-8")
    expect_error(lambda: read_user_data(root), root / "neg" / "blank.txt", "empty document")
