"""Line chunks: cut in the parent, parsed in a worker, they give exactly the rows read whole."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from textclf.batch import sources
from textclf.batch.sources import BadRow, LineParser, Lines, Row, line_chunks, read_items

LINES = [
    '{"text": "first", "id": "a"}',
    "",
    "   ",
    '{"text": "second", "id": "b"}',
    '{"text": "unclosed',
    '{"text": 7, "id": "c"}',
    "",
    '{"text": "last", "id": "d"}',
]


def _write(path: Path, fmt: str) -> Path:
    body = "\n".join(LINES).encode()  # no newline after the last line
    if fmt == "txt":
        body = b"alpha\n\nbeta\r\ngamma \xff\ndelta"
    path.write_bytes(b"\xef\xbb\xbf" + body)  # a BOM, as editors on Windows write
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "txt"])
@pytest.mark.parametrize("rows", [1, 2, 3, 100])
@pytest.mark.parametrize("skip", [0, 1, 3])
def test_chunks_parse_to_the_rows_after_skip(
    tmp_path: Path, fmt: str, rows: int, skip: int
) -> None:
    path = _write(tmp_path / f"in.{fmt}", fmt)
    parse = LineParser(path, fmt, "text", None)
    whole = list(read_items(path, fmt, "text", None))
    chunks = list(line_chunks(path, fmt, rows, skip))
    assert [n for n, _ in chunks[:-1]] == [rows] * (len(chunks) - 1)
    items = [item for _, chunk in chunks for item in parse(chunk)]
    assert sum(n for n, _ in chunks) == len(items) == len(whole) - skip
    assert items == whole[skip:]


def test_rows_lines_and_messages(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", "jsonl")
    items = list(read_items(path, "jsonl", "text", "id"))
    assert items[:2] == [Row(0, "a", "first"), Row(1, "b", "second")]
    assert isinstance(items[2], BadRow) and items[2].row == 2
    assert items[2].message.startswith(f"{path}, line 5: invalid JSON")
    assert isinstance(items[3], BadRow)
    assert items[3].message == f"{path}, line 6: 'text' must be a string, got int"
    assert items[4] == Row(4, "d", "last")
    assert json.loads(LINES[-1])["text"] == "last"


def test_text_lines_keep_blanks_and_name_bad_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.txt", "txt")
    items = list(read_items(path, "txt", "text", None))
    assert items[:3] == [Row(0, 0, "alpha"), Row(1, 1, ""), Row(2, 2, "beta")]
    assert items[3] == BadRow(3, f"{path}, line 4: not valid UTF-8 (byte 7)")
    assert items[4] == Row(4, 4, "delta")


def test_unicode_blank_lines_bom_only_files_and_bad_utf8_literally(tmp_path: Path) -> None:
    jsonl = tmp_path / "in.jsonl"
    blanks = b"\xc2\xa0\n\xe3\x80\x80\r\n"  # U+00A0 and U+3000 alone on a line
    jsonl.write_bytes(b'{"text": "a"}\n' + blanks + b'{"text": "b"}\n{"text": "\xed\xa0\x80"}\n')
    items = list(read_items(jsonl, "jsonl", "text", None))
    assert items[:2] == [Row(0, 0, "a"), Row(1, 1, "b")]  # U+00A0 and U+3000 lines: not rows
    assert items[2] == BadRow(2, f"{jsonl}, line 5: not valid UTF-8 (byte 11)")  # a surrogate
    assert [n for n, _ in line_chunks(jsonl, "jsonl", 100)] == [3]
    for fmt in ("txt", "jsonl"):
        only_bom = tmp_path / f"bom.{fmt}"
        only_bom.write_bytes(b"\xef\xbb\xbf")
        assert list(read_items(only_bom, fmt, "text", None)) == []


def _cut_line_by_line(path: Path, fmt: str, rows: int, skip: int) -> list[tuple[int, Lines]]:
    """The plain definition `line_chunks` must equal (its code before 7bcf52d): every line of the
    file as binary iteration gives them, one at a time."""
    out: list[tuple[int, Lines]] = []
    lines: list[bytes] = []
    row, first = 0, (1, 0)
    handle = path.open("rb")
    for number, line in enumerate(handle, start=1):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
            if not line:
                continue
        is_row = fmt == "txt" or bool(line.decode("utf-8", "replace").strip())
        if row < skip:
            row += is_row
            continue
        if not lines:
            first = (number, row)
        lines.append(line)
        row += is_row
        if row - first[1] == rows:
            out.append((rows, Lines(*first, lines)))
            lines = []
    handle.close()
    if lines:
        out.append((row - first[1], Lines(*first, lines)))
    return out


@pytest.mark.parametrize("read_bytes", [1, 40, 1 << 20])  # a batch of one line, of a few, of all
@pytest.mark.parametrize("fmt", ["jsonl", "txt"])
@pytest.mark.parametrize("start", [b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"])
@pytest.mark.parametrize("end", [b'{"text": "no newline"}', b""])
def test_chunks_equal_a_line_by_line_cut_wherever_a_read_ends(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    read_bytes: int,
    fmt: str,
    start: bytes,
    end: bytes,
) -> None:
    monkeypatch.setattr(sources, "_READ_BYTES", read_bytes)
    rng = random.Random(read_bytes)
    kinds = ['{"text": "post %d"}\n', "\n", "  \r\n", "\u00a0\n", ' {"text": "indented %d"}\n']
    kinds.append('{"text": "a lone \r inside %d"}\n')  # not a line break in a binary read
    body = "".join(rng.choice(kinds).replace("%d", str(i)) for i in range(60))
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(start + body.encode() + end)
    only_bom = tmp_path / f"bom.{fmt}"
    only_bom.write_bytes(b"\xef\xbb\xbf")
    assert list(line_chunks(only_bom, fmt, 2)) == _cut_line_by_line(only_bom, fmt, 2, 0) == []
    for rows in (1, 2, 7, 100):
        for skip in (0, 1, 5, 40):
            want = _cut_line_by_line(path, fmt, rows, skip)
            assert list(line_chunks(path, fmt, rows, skip)) == want, (rows, skip)
