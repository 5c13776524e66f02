"""Loading and splitting the texts a model learns from.

Two sources: 20 Newsgroups (bydate split, from a local archive or scikit-learn's downloader; see
textclf.newsgroups) and user files (CSV, TSV, JSONL or a folder with one sub-folder per label; see
textclf.datafiles). Test data is the 20 Newsgroups test split, a test file, or a stratified
hold-out; validation is carved from the training data (see textclf.splits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textclf.config import TWENTY_NEWSGROUPS, DataConfig
from textclf.corpus import Corpus
from textclf.datafiles import read_user_data
from textclf.errors import DataError
from textclf.newsgroups import load_bydate
from textclf.splits import (
    check_known_labels,
    check_trainable,
    select_categories,
    stratified_split,
    training_labels,
)


@dataclass(frozen=True)
class Splits:
    """Train/validation/test parts plus a JSON-ready record of where they came from.

    `labels` is the sorted set of training labels: it fixes the model's output order.
    """

    train: Corpus
    val: Corpus
    test: Corpus | None
    labels: tuple[str, ...]
    description: dict[str, Any]


def load_splits(config: DataConfig, *, progress: bool = False) -> Splits:
    """Load the training data and split it into train, validation and test parts.

    Test data is the 20 Newsgroups test split, `config.test_data`, or else a stratified hold-out
    of `config.test_size` from `config.data`. Validation is carved from what remains for training.
    """
    full, fmt, test, test_source = _training_and_test(config, progress=progress)
    train, val = stratified_split(
        full, config.val_size, config.seed, part="validation", path=config.data
    )
    labels = training_labels(full, train, config.data)
    if config.test_data is not None:
        check_known_labels(test, labels, config.test_data)
    description = _describe(config, config.data, fmt)
    description["test_source"] = test_source
    description["test_size"] = config.test_size if test_source == "held out" else None
    description["sizes"] = {"train": len(train), "val": len(val), "test": len(test)}
    return Splits(train=train, val=val, test=test, labels=labels, description=description)


def _training_and_test(config: DataConfig, *, progress: bool) -> tuple[Corpus, str, Corpus, str]:
    """(training data before validation is carved out, its format, test data, test source)."""
    if config.data is None:
        subsets = ("train",) if config.test_data else ("train", "test")
        corpora, fmt = _newsgroups(config, subsets, progress=progress)
        full = corpora[0]
    else:
        _reject_remove(config)
        full, fmt = _read_user_data(config.data, config, progress=progress)
        full = select_categories(full, config.categories, config.data, strict=True)
        check_trainable(full, config.data)
    if config.test_data is not None:
        test, _ = _read_user_data(config.test_data, config, progress=progress)
        test = select_categories(test, config.categories, config.test_data, strict=False)
        return full, fmt, test, str(config.test_data)
    if config.data is None:
        return full, fmt, corpora[1], "20newsgroups test split"
    full, test = stratified_split(
        full, config.test_size, config.seed, part="test", path=config.data
    )
    return full, fmt, test, "held out"


def load_test(config: DataConfig) -> tuple[Corpus, dict[str, Any]]:
    """The data `textclf evaluate` scores a model on, with a JSON-ready description.

    `config.test_data` if given; else the WHOLE of `config.data` (it is being evaluated, not
    trained on, so nothing is held out); else the 20 Newsgroups test split with the same
    categories and removals. `remove` only ever applies to 20 Newsgroups texts.
    """
    path = config.test_data or config.data
    if path is None:
        (corpus,), fmt = _newsgroups(config, ("test",), progress=False)
        split = "20newsgroups test split"
    else:
        corpus, fmt = _read_user_data(path, config, progress=False)
        corpus = select_categories(corpus, config.categories, path, strict=False)
        if not len(corpus):
            raise DataError(f"no rows with the labels {list(config.categories or ())}", path=path)
        split = "whole file"
    description = _describe(config, path, fmt)
    description["split"] = split
    description["sizes"] = {"test": len(corpus)}
    return corpus, description


def _newsgroups(
    config: DataConfig, subsets: tuple[str, ...], *, progress: bool
) -> tuple[list[Corpus], str]:
    return load_bydate(
        subsets,
        archive=config.archive,
        categories=config.categories,
        remove=config.remove,
        progress=progress,
    )


def _read_user_data(path: Path, config: DataConfig, *, progress: bool) -> tuple[Corpus, str]:
    return read_user_data(
        path, text_column=config.text_column, label_column=config.label_column, progress=progress
    )


def _reject_remove(config: DataConfig) -> None:
    # Training on user data while asking to strip newsgroup headers is a mistake worth stopping:
    # silently ignoring it would train on different text than the user asked for.
    if config.remove:
        raise DataError(
            f"remove={list(config.remove)} only applies to 20 Newsgroups; "
            "user data is used as given"
        )


def _describe(config: DataConfig, source: Path | None, fmt: str) -> dict[str, Any]:
    """JSON-ready record of the data: the artifact keeps it so a model says what it learned from."""
    newsgroups = source is None
    return {
        "source": TWENTY_NEWSGROUPS if newsgroups else str(source),
        "format": fmt,
        "archive": str(config.archive) if newsgroups and config.archive else None,
        "categories": None if config.categories is None else sorted(set(config.categories)),
        "remove": list(config.remove) if newsgroups else [],
        "text_column": None if newsgroups else config.text_column,
        "label_column": None if newsgroups else config.label_column,
        "test_data": None if config.test_data is None else str(config.test_data),
        "seed": config.seed,
        "val_size": config.val_size,
        "test_size": None,
    }
