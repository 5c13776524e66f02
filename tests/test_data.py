"""Tests for textclf.data: real 20 Newsgroups archive and real files on disk, no mocks."""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import pickle
import re
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from sklearn.datasets import load_files
from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)

from textclf.config import TUTORIAL_CATEGORIES, DataConfig
from textclf.data import NEWSGROUPS_CATEGORIES, Corpus, Splits, load_splits, load_test
from textclf.errors import DataError

ALL_PARTS = ("headers", "footers", "quotes")
TWO_CATEGORIES = ("rec.sport.baseball", "sci.space")
LABELS = ("neg", "neutral", "pos")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def archive() -> Path:
    """The 20news-bydate.tar.gz shared by the project (or $TEXTCLF_20NG_ARCHIVE)."""
    default = Path(__file__).resolve().parents[1].parent / "shared/data/20news-bydate.tar.gz"
    path = Path(os.environ.get("TEXTCLF_20NG_ARCHIVE") or default)
    if not path.exists():
        pytest.skip(f"20 Newsgroups archive not found at {path}")
    return path


@pytest.fixture(scope="module")
def full_20ng(archive: Path) -> Splits:
    return load_splits(DataConfig(archive=archive))


@pytest.fixture(scope="module")
def tutorial_no_headers(archive: Path) -> Splits:
    return load_splits(
        DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES, remove=("headers",))
    )


@pytest.fixture(scope="module")
def extracted(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two categories of the real archive extracted to disk, as a user might have them."""
    root = tmp_path_factory.mktemp("bydate")
    with tarfile.open(archive) as tar:
        members = [m for m in tar if Path(m.name).parent.name in TWO_CATEGORIES]
        tar.extractall(root, members=members, filter="data")
    return root


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


def all_texts(splits: Splits) -> list[str]:
    assert splits.test is not None
    return splits.train.texts + splits.val.texts + splits.test.texts


# --- 20 Newsgroups -------------------------------------------------------------------------------


def test_full_20ng_has_bydate_sizes(full_20ng: Splits) -> None:
    assert full_20ng.test is not None
    assert len(full_20ng.train) + len(full_20ng.val) == 11_314
    assert len(full_20ng.val) == math.ceil(0.1 * 11_314)
    assert len(full_20ng.test) == 7_532
    assert full_20ng.labels == NEWSGROUPS_CATEGORIES
    assert len(full_20ng.labels) == 20
    description = json.loads(json.dumps(full_20ng.description))
    assert description["source"] == "20newsgroups"
    assert description["sizes"] == {"train": 10_182, "val": 1_132, "test": 7_532}
    assert description["test_source"] == "20newsgroups test split"


def test_20ng_validation_is_stratified_and_test_untouched(full_20ng: Splits) -> None:
    assert full_20ng.test is not None
    train, val = Counter(full_20ng.train.labels), Counter(full_20ng.val.labels)
    for label in full_20ng.labels:
        assert abs(val[label] - 0.1 * (train[label] + val[label])) <= 1
    # The test split is the bydate test set in load_files order: sorted category, then file.
    assert full_20ng.test.labels == sorted(full_20ng.test.labels)
    assert not set(full_20ng.val.texts) & set(full_20ng.test.texts[:500])


def test_category_subset_sizes(tutorial_no_headers: Splits) -> None:
    splits = tutorial_no_headers
    assert splits.test is not None
    assert splits.labels == tuple(sorted(TUTORIAL_CATEGORIES))
    assert len(splits.train) + len(splits.val) == 584 + 597 + 593
    assert Counter(splits.test.labels) == {
        "comp.graphics": 389,
        "rec.sport.baseball": 397,
        "sci.space": 394,
    }
    assert splits.description["categories"] == sorted(TUTORIAL_CATEGORIES)
    assert splits.description["remove"] == ["headers"]


def test_remove_headers_strips_from_lines(full_20ng: Splits, tutorial_no_headers: Splits) -> None:
    assert full_20ng.test is not None and tutorial_no_headers.test is not None
    has_from_line = re.compile(r"^From:", re.MULTILINE).search
    assert all(has_from_line(text) for text in full_20ng.test.texts)
    stripped = all_texts(tutorial_no_headers)
    # A few posts quote a forwarded message's headers in their body; those stay.
    assert sum(bool(has_from_line(text)) for text in stripped) < 0.01 * len(stripped)


def test_remove_headers_equals_sklearn_stripping(
    full_20ng: Splits, tutorial_no_headers: Splits
) -> None:
    assert full_20ng.test is not None and tutorial_no_headers.test is not None
    raw = [
        text
        for text, label in zip(full_20ng.test.texts, full_20ng.test.labels, strict=True)
        if label == "comp.graphics"
    ]
    ours = tutorial_no_headers.test.texts[: len(raw)]
    assert ours[0] == strip_newsgroup_header(raw[0])
    assert ours == [strip_newsgroup_header(text) for text in raw]


def test_load_test_20ng_applies_all_removals_like_sklearn(archive: Path, full_20ng: Splits) -> None:
    assert full_20ng.test is not None
    corpus, description = load_test(
        DataConfig(archive=archive, categories=("sci.space",), remove=ALL_PARTS)
    )
    raw = [
        text
        for text, label in zip(full_20ng.test.texts, full_20ng.test.labels, strict=True)
        if label == "sci.space"
    ]
    expected = [
        strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(t))) for t in raw
    ]
    assert corpus.texts == expected
    assert set(corpus.labels) == {"sci.space"}
    assert description["sizes"] == {"test": 394}
    assert description["remove"] == list(ALL_PARTS)


def test_same_seed_gives_same_20ng_split(archive: Path, tutorial_no_headers: Splits) -> None:
    again = load_splits(
        DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES, remove=("headers",))
    )
    assert again == tutorial_no_headers


def test_extracted_folder_matches_tarball(archive: Path, extracted: Path) -> None:
    from_folder = load_splits(DataConfig(archive=extracted, categories=TWO_CATEGORIES))
    from_tarball = load_splits(DataConfig(archive=archive, categories=TWO_CATEGORIES))
    assert from_folder.train == from_tarball.train
    assert from_folder.val == from_tarball.val
    assert from_folder.test == from_tarball.test
    assert from_folder.description["format"] == "20news-bydate folder"
    assert from_tarball.description["format"] == "20news-bydate.tar.gz"


def test_sklearn_fetch_path_matches_archive(
    archive: Path, extracted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build scikit-learn's cache as its downloader does, so fetch_20newsgroups runs offline."""
    cache = {
        subset: load_files(extracted / f"20news-bydate-{subset}", encoding="latin1")
        for subset in ("train", "test")
    }
    cache_file = tmp_path / "20news-bydate_py3.pkz"
    cache_file.write_bytes(codecs.encode(pickle.dumps(cache), "zlib_codec"))
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))

    config = DataConfig(categories=TWO_CATEGORIES, remove=ALL_PARTS)
    fetched, description = load_test(config)
    local, _ = load_test(DataConfig(archive=archive, categories=TWO_CATEGORIES, remove=ALL_PARTS))
    assert fetched == local
    assert description["format"] == "sklearn fetch_20newsgroups"


def test_unknown_category_lists_valid_ones(archive: Path) -> None:
    with pytest.raises(DataError) as info:
        load_test(DataConfig(archive=archive, categories=("sci.space", "sci.spaec")))
    message = str(info.value)
    assert "sci.spaec" in message and "alt.atheism" in message and "talk.religion.misc" in message


def test_unknown_category_fails_before_any_download() -> None:
    with pytest.raises(DataError, match=r"unknown 20 Newsgroups categories \['comp\.grafics'\]"):
        load_splits(DataConfig(categories=("comp.grafics",)))


def test_missing_archive(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar.gz"
    with pytest.raises(DataError, match="archive not found") as info:
        load_test(DataConfig(archive=missing))
    assert str(missing) in str(info.value)


def test_corrupt_archive(tmp_path: Path) -> None:
    broken = tmp_path / "20news-bydate.tar.gz"
    broken.write_bytes(b"this is not a tarball")
    with pytest.raises(DataError, match="cannot read the 20 Newsgroups archive") as info:
        load_test(DataConfig(archive=broken))
    assert info.value.path == broken


def test_archive_folder_without_bydate_layout(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    with pytest.raises(DataError, match="no documents under 20news-bydate-test/"):
        load_test(DataConfig(archive=tmp_path))


# --- user data: formats --------------------------------------------------------------------------


def test_csv_with_custom_columns(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "data.csv", rows(), columns=("body", "category"))
    splits = load_splits(DataConfig(data=data, text_column="body", label_column="category"))
    assert splits.test is not None
    assert (len(splits.train), len(splits.val), len(splits.test)) == (43, 5, 12)
    assert splits.labels == LABELS
    assert sorted(all_texts(splits)) == sorted(text for text, _ in rows())
    description = json.loads(json.dumps(splits.description))
    assert description["format"] == "csv"
    assert description["source"] == str(data)
    assert description["text_column"] == "body"
    assert description["label_column"] == "category"
    assert description["test_source"] == "held out"
    assert description["test_size"] == 0.2
    assert description["sizes"] == {"train": 43, "val": 5, "test": 12}


def test_tsv_keeps_tabs_newlines_and_quotes(tmp_path: Path) -> None:
    data = [(f'line one\twith tab {i}\nline "two"', label) for i, label in enumerate(LABELS * 10)]
    splits = load_splits(DataConfig(data=write_delimited(tmp_path / "data.tsv", data)))
    assert sorted(all_texts(splits)) == sorted(text for text, _ in data)
    assert splits.description["format"] == "tsv"


def test_jsonl_labels_become_strings(tmp_path: Path) -> None:
    records: list[dict[str, object]] = [
        {"review": f"text {i}", "stars": i % 3, "id": i} for i in range(30)
    ]
    path = write_jsonl(tmp_path / "data.ndjson", records)
    path.write_text(path.read_text() + "\n\n", encoding="utf-8")  # trailing blank lines are fine
    splits = load_splits(DataConfig(data=path, text_column="review", label_column="stars"))
    assert splits.labels == ("0", "1", "2")
    assert splits.description["format"] == "jsonl"


def test_csv_and_jsonl_labels_agree(tmp_path: Path) -> None:
    csv_file = write_delimited(tmp_path / "a.csv", [("x", "1"), ("y", "2")])
    jsonl_file = write_jsonl(
        tmp_path / "b.jsonl", [{"text": "x", "label": 1}, {"text": "y", "label": 2}]
    )
    assert load_test(DataConfig(data=csv_file))[0] == load_test(DataConfig(data=jsonl_file))[0]


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\r\nhéllo,a\r\nwörld,b\r\n".encode("utf-8-sig"))
    corpus, _ = load_test(DataConfig(data=path))
    assert corpus == Corpus(texts=["héllo", "wörld"], labels=["a", "b"])


def test_folder_format(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", [(f"naïve text {t}", label) for t, label in rows()])
    (root / "pos" / ".DS_Store").write_bytes(b"\xff\xfe junk")  # hidden files are skipped
    splits = load_splits(DataConfig(data=root))
    assert splits.labels == LABELS
    assert len(all_texts(splits)) == 60
    assert all(text.startswith("naïve text") for text in all_texts(splits))
    assert splits.description["format"] == "folder"


def test_test_file_instead_of_hold_out(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "train.csv", rows())
    test_rows = [("held-out one", "pos"), ("held-out two", "neg")]
    test_file = write_delimited(tmp_path / "test.csv", test_rows)
    splits = load_splits(DataConfig(data=data, test_data=test_file))
    assert splits.test == Corpus(texts=["held-out one", "held-out two"], labels=["pos", "neg"])
    assert len(splits.train) + len(splits.val) == 60
    assert splits.description["test_source"] == str(test_file)
    assert splits.description["test_size"] is None
    assert splits.description["sizes"]["test"] == 2


def test_hold_out_is_stratified_and_disjoint(tmp_path: Path) -> None:
    splits = load_splits(DataConfig(data=write_delimited(tmp_path / "d.csv", rows())))
    assert splits.test is not None
    assert Counter(splits.test.labels) == {label: 4 for label in LABELS}
    assert Counter(splits.train.labels + splits.val.labels) == {label: 16 for label in LABELS}
    assert not set(splits.test.texts) & set(splits.train.texts + splits.val.texts)
    assert not set(splits.val.texts) & set(splits.train.texts)


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    first = load_splits(DataConfig(data=data, seed=7))
    assert load_splits(DataConfig(data=data, seed=7)) == first
    other = load_splits(DataConfig(data=data, seed=8))
    assert other.test != first.test or other.val != first.val


def test_load_test_with_only_data_returns_whole_file(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    corpus, description = load_test(DataConfig(data=data))
    assert corpus.texts == [text for text, _ in rows()]
    assert corpus.labels == [label for _, label in rows()]
    assert description["split"] == "whole file"
    assert description["sizes"] == {"test": 60}


def test_load_test_prefers_test_data(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    test_file = write_jsonl(tmp_path / "t.jsonl", [{"text": "only one", "label": "pos"}])
    corpus, description = load_test(DataConfig(data=data, test_data=test_file))
    assert corpus == Corpus(texts=["only one"], labels=["pos"])
    assert description["source"] == str(test_file)


def test_categories_select_user_labels(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    splits = load_splits(DataConfig(data=data, categories=("neg", "pos")))
    assert splits.labels == ("neg", "pos")
    with pytest.raises(DataError, match=r"unknown categories \['happy'\]"):
        load_splits(DataConfig(data=data, categories=("neg", "happy")))


# --- user data: every bad-data case names the file, the row and the problem ---------------------


def expect_error(config: DataConfig, path: Path, *fragments: str, row: int | None = None) -> None:
    with pytest.raises(DataError) as info:
        load_splits(config)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.row == row, message
    if row is not None:
        assert f"row {row}" in message, message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    expect_error(DataConfig(data=path), path, "no such file")


def test_missing_test_file(tmp_path: Path) -> None:
    data, missing = write_delimited(tmp_path / "d.csv", rows()), tmp_path / "test.csv"
    expect_error(DataConfig(data=data, test_data=missing), missing, "no such file")


def test_missing_column_lists_columns_found(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "d.csv", rows(), columns=("body", "label"))
    expect_error(DataConfig(data=path), path, "no column 'text'", "['body', 'label']")


def test_missing_jsonl_key(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"txt": "b", "label": "y"}]
    )
    expect_error(DataConfig(data=path), path, "no 'text' key", "['label', 'txt']", row=2)


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
    expect_error(DataConfig(data=path), path, problem)


def test_empty_text_names_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text,label\na,x\n\n"multi\nline",y\n"  ",x\n', encoding="utf-8")
    expect_error(DataConfig(data=path), path, "empty text in column 'text'", "(line 6)", row=3)


def test_short_csv_row_is_missing_label(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nno label here\n", encoding="utf-8")
    expect_error(DataConfig(data=path), path, "missing label in column 'label'", row=2)


def test_empty_label(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\na\tx\nb\t \n", encoding="utf-8")
    expect_error(DataConfig(data=path), path, "missing label", row=2)


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
    expect_error(DataConfig(data=path), path, problem, row=3)


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", label: y}\n', encoding="utf-8")
    expect_error(DataConfig(data=path), path, "invalid JSON", row=2)


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('["a", "x"]\n', encoding="utf-8")
    expect_error(DataConfig(data=path), path, "expected a JSON object, got list", row=1)


def test_label_with_one_example(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "d.csv", [*rows(), ("lonely", "rare")])
    expect_error(DataConfig(data=path), path, "'rare' (1)", "fewer than two examples")


def test_fewer_than_two_labels(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "d.csv", [(f"t{i}", "only") for i in range(10)])
    expect_error(DataConfig(data=path), path, "1 label(s) ['only']", "at least two")


def test_undecodable_csv_names_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    head = b"text,label\na,x\n"
    path.write_bytes(head + b"caf\xe9,y\n")
    expect_error(
        DataConfig(data=path),
        path,
        "not valid UTF-8",
        f"byte {len(head) + 3}",
        "line 3",
        "re-encode",
    )


def test_undecodable_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "x"}\n{"text": "\xff", "label": "y"}\n')
    expect_error(DataConfig(data=path), path, "not valid UTF-8", "byte 39", "line 2")


def test_undecodable_document_in_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", rows(3))
    bad = root / "pos" / "zz-latin1.txt"
    bad.write_bytes(b"line one\nna\xefve\n")
    expect_error(DataConfig(data=root), bad, "not valid UTF-8", "byte 11", "line 2")


@pytest.mark.parametrize("name", ["data.xlsx", "data.txt", "data"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("text,label\na,b\n", encoding="utf-8")
    expect_error(DataConfig(data=path), path, "unsupported file type", ".csv, .tsv, .jsonl")


def test_folder_without_label_folders(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("loose file", encoding="utf-8")
    expect_error(DataConfig(data=tmp_path), tmp_path, "no label sub-folders")


def test_empty_label_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", rows(3))
    (root / "unused").mkdir()
    expect_error(DataConfig(data=root), root / "unused", "'unused' holds no documents")


def test_empty_document_in_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "docs", rows(3))
    (root / "neg" / "blank.txt").write_text(" \n", encoding="utf-8")
    expect_error(DataConfig(data=root), root / "neg" / "blank.txt", "empty document")


def test_test_labels_not_in_training(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    test_file = write_delimited(tmp_path / "t.csv", [("a", "pos"), ("b", "angry"), ("c", "sad")])
    expect_error(
        DataConfig(data=data, test_data=test_file),
        test_file,
        "test labels not in the training data: ['angry', 'sad']",
    )


def test_too_few_examples_for_stratified_splits(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "d.csv", rows(2))  # 6 rows, 3 labels
    expect_error(DataConfig(data=path), path, "stratified test split", "3 labels")


def test_label_too_rare_for_validation_after_hold_out(tmp_path: Path) -> None:
    data = [*rows(), ("rare one", "rare"), ("rare two", "rare")]
    path = write_delimited(tmp_path / "d.csv", data)
    # Half of 'rare' goes to the test split, leaving one example: too few to stratify validation.
    expect_error(
        DataConfig(data=path, test_size=0.5), path, "stratified validation split", "'rare' (1)"
    )


def test_remove_is_refused_for_user_data(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    with pytest.raises(DataError, match="only applies to 20 Newsgroups"):
        load_splits(DataConfig(data=data, remove=("headers",)))
