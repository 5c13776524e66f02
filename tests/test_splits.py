"""Tests for textclf.splits: stratified, seeded splits and the label checks around them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.userfiles import LABELS, expect_error, rows
from textclf.corpus import Corpus
from textclf.errors import DataError
from textclf.splits import (
    check_known_labels,
    check_trainable,
    select_categories,
    stratified_split,
    training_labels,
)

PATH = Path("data.csv")  # only named in messages


def corpus(data: list[tuple[str, str]] | None = None) -> Corpus:
    data = rows() if data is None else data
    return Corpus(texts=[text for text, _ in data], labels=[label for _, label in data])


def test_split_is_stratified_and_disjoint() -> None:
    kept, taken = stratified_split(corpus(), 0.2, 0, part="test", path=PATH)
    assert Counter(taken.labels) == {label: 4 for label in LABELS}
    assert Counter(kept.labels) == {label: 16 for label in LABELS}
    assert not set(kept.texts) & set(taken.texts)
    assert sorted(kept.texts + taken.texts) == sorted(corpus().texts)


def test_same_seed_same_split_other_seed_other_split() -> None:
    first = stratified_split(corpus(), 0.2, 7, part="test", path=PATH)
    assert stratified_split(corpus(), 0.2, 7, part="test", path=PATH) == first
    assert stratified_split(corpus(), 0.2, 8, part="test", path=PATH) != first


def test_too_few_examples_for_a_stratified_split() -> None:
    expect_error(
        lambda: stratified_split(corpus(rows(2)), 0.2, 0, part="test", path=PATH),  # 6 rows
        PATH,
        "stratified test split",
        "3 labels",
    )


def test_label_with_one_example_cannot_be_split() -> None:
    lonely = corpus([*rows(), ("lonely", "rare")])
    expect_error(
        lambda: stratified_split(lonely, 0.1, 0, part="validation", path=PATH),
        PATH,
        "stratified validation split",
        "'rare' (1)",
    )


def test_check_trainable() -> None:
    check_trainable(corpus(), PATH)
    rare = corpus([*rows(), ("lonely", "rare")])
    expect_error(lambda: check_trainable(rare, PATH), PATH, "'rare' (1)", "fewer than two")
    one = corpus([(f"t{i}", "only") for i in range(10)])
    expect_error(lambda: check_trainable(one, PATH), PATH, "1 label(s) ['only']", "at least two")


def test_select_categories() -> None:
    picked = select_categories(corpus(), ("pos", "neg"), PATH, strict=True)
    assert set(picked.labels) == {"neg", "pos"} and len(picked) == 40
    assert select_categories(corpus(), None, PATH, strict=True) == corpus()
    with pytest.raises(DataError, match=r"unknown categories \['happy'\]"):
        select_categories(corpus(), ("neg", "happy"), PATH, strict=True)
    assert len(select_categories(corpus(), ("neg", "happy"), PATH, strict=False)) == 20


def test_training_labels_must_all_reach_training() -> None:
    full = corpus()
    assert training_labels(full, full, PATH) == LABELS
    no_pos = select_categories(full, ("neg", "neutral"), PATH, strict=True)
    expect_error(lambda: training_labels(full, no_pos, PATH), PATH, "['pos']", "validation")


def test_unknown_test_labels_are_listed_briefly() -> None:
    test = corpus([("t", f"label{i:02d}") for i in range(12)])
    expect_error(
        lambda: check_known_labels(test, LABELS, PATH),
        PATH,
        "test labels not in the training data: ['label00',",
        "'label09', ... and 2 more]",
    )
