"""Tests for textclf.data: which data becomes train, validation and test, and the record of it;
on the real 20 Newsgroups archive and real files on disk, no mocks."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from tests.userfiles import LABELS, expect_error, rows, write_delimited, write_jsonl
from textclf.config import TUTORIAL_CATEGORIES, DataConfig
from textclf.corpus import Corpus
from textclf.data import Splits, load_splits, load_test
from textclf.errors import DataError
from textclf.newsgroups import NEWSGROUPS_CATEGORIES, load_bydate

ALL_PARTS = ("headers", "footers", "quotes")


@pytest.fixture(scope="module")
def full_20ng(archive: Path) -> Splits:
    return load_splits(DataConfig(archive=archive))


@pytest.fixture(scope="module")
def tutorial_no_headers(archive: Path) -> Splits:
    return load_splits(
        DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES, remove=("headers",))
    )


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
    description = json.loads(json.dumps(full_20ng.description))
    assert description["source"] == "20newsgroups"
    assert description["sizes"] == {"train": 10_182, "val": 1_132, "test": 7_532}
    assert description["test_source"] == "20newsgroups test split"


def test_20ng_validation_is_stratified_and_test_untouched(full_20ng: Splits) -> None:
    assert full_20ng.test is not None
    train, val = Counter(full_20ng.train.labels), Counter(full_20ng.val.labels)
    for label in full_20ng.labels:
        assert abs(val[label] - 0.1 * (train[label] + val[label])) <= 1
    # The test split is the whole bydate test set, ordered by category, then file name.
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


def test_same_seed_gives_same_20ng_split(archive: Path, tutorial_no_headers: Splits) -> None:
    again = load_splits(
        DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES, remove=("headers",))
    )
    assert again == tutorial_no_headers


def test_load_test_20ng_is_the_test_split_with_categories_and_removals(archive: Path) -> None:
    corpus, description = load_test(
        DataConfig(archive=archive, categories=("sci.space",), remove=ALL_PARTS)
    )
    (expected,), _ = load_bydate(
        ("test",), archive=archive, categories=("sci.space",), remove=ALL_PARTS
    )
    assert corpus == expected
    assert description["split"] == "20newsgroups test split"
    assert description["sizes"] == {"test": 394}
    assert description["remove"] == list(ALL_PARTS)


# --- user data -----------------------------------------------------------------------------------


def test_csv_hold_out_and_description(tmp_path: Path) -> None:
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


def test_hold_out_is_stratified_and_disjoint(tmp_path: Path) -> None:
    splits = load_splits(DataConfig(data=write_delimited(tmp_path / "d.csv", rows())))
    assert splits.test is not None
    assert Counter(splits.test.labels) == {label: 4 for label in LABELS}
    assert Counter(splits.train.labels + splits.val.labels) == {label: 16 for label in LABELS}
    assert not set(splits.test.texts) & set(splits.train.texts + splits.val.texts)
    assert not set(splits.val.texts) & set(splits.train.texts)


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
    assert load_splits(DataConfig(data=data, categories=("neg", "pos"))).labels == ("neg", "pos")
    with pytest.raises(DataError, match=r"unknown categories \['happy'\]"):
        load_splits(DataConfig(data=data, categories=("neg", "happy")))


def test_missing_test_file(tmp_path: Path) -> None:
    data, missing = write_delimited(tmp_path / "d.csv", rows()), tmp_path / "test.csv"
    expect_error(lambda: load_splits(DataConfig(data=data, test_data=missing)), missing, "no such")


def test_test_labels_not_in_training(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    test_file = write_delimited(tmp_path / "t.csv", [("a", "pos"), ("b", "angry"), ("c", "sad")])
    expect_error(
        lambda: load_splits(DataConfig(data=data, test_data=test_file)),
        test_file,
        "test labels not in the training data: ['angry', 'sad']",
    )


def test_untrainable_data_is_refused(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "d.csv", [*rows(), ("lonely", "rare")])
    expect_error(lambda: load_splits(DataConfig(data=path)), path, "'rare' (1)", "fewer than two")


def test_label_too_rare_for_validation_after_hold_out(tmp_path: Path) -> None:
    data = [*rows(), ("rare one", "rare"), ("rare two", "rare")]
    path = write_delimited(tmp_path / "d.csv", data)
    # Half of 'rare' goes to the test split, leaving one example: too few to stratify validation.
    expect_error(
        lambda: load_splits(DataConfig(data=path, test_size=0.5)),
        path,
        "stratified validation split",
        "'rare' (1)",
    )


def test_remove_is_refused_for_user_data(tmp_path: Path) -> None:
    data = write_delimited(tmp_path / "d.csv", rows())
    with pytest.raises(DataError, match="only applies to 20 Newsgroups"):
        load_splits(DataConfig(data=data, remove=("headers",)))
