"""Label checks and stratified, seeded splits of a corpus.

The validation split is always carved from the training data, never from the test data, so test
scores stay honest. Splits are stratified and seeded, so the same seed gives the same split.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from textclf.corpus import Corpus
from textclf.errors import DataError


def select_categories(
    corpus: Corpus, categories: Sequence[str] | None, path: Path, *, strict: bool
) -> Corpus:
    """Keep only the requested labels; `strict` demands each one be present (training data)."""
    if categories is None:
        return corpus
    found = sorted(set(corpus.labels))
    unknown = sorted(set(categories) - set(found))
    if strict and unknown:
        raise DataError(
            f"unknown categories {unknown}; labels in the data: {_preview(found)}", path=path
        )
    wanted = set(categories)
    return _subset(corpus, [i for i, label in enumerate(corpus.labels) if label in wanted])


def check_trainable(corpus: Corpus, path: Path | None) -> None:
    counts = Counter(corpus.labels)
    if len(counts) < 2:
        raise DataError(
            f"found {len(counts)} label(s) {sorted(counts)}; a classifier needs at least two",
            path=path,
        )
    rare = {label: n for label, n in sorted(counts.items()) if n < 2}
    if rare:
        raise DataError(
            f"labels with fewer than two examples: {_counts(rare)}; every label needs at least "
            "two so the splits can be stratified (add examples or drop the label)",
            path=path,
        )


def stratified_split(
    corpus: Corpus, size: float, seed: int, *, part: str, path: Path | None
) -> tuple[Corpus, Corpus]:
    """Split off `size` of `corpus`, keeping label proportions, reproducibly for `seed`."""
    counts = Counter(corpus.labels)
    rare = {label: n for label, n in sorted(counts.items()) if n < 2}
    if rare:
        raise DataError(
            f"cannot carve a stratified {part} split: labels with fewer than two examples left "
            f"for it: {_counts(rare)}; add examples for these labels",
            path=path,
        )
    held = math.ceil(size * len(corpus))
    if min(held, len(corpus) - held) < len(counts):
        raise DataError(
            f"cannot carve a stratified {part} split of {size} from {len(corpus)} examples: "
            f"both parts need at least one example of each of the {len(counts)} labels, but "
            f"they would hold {len(corpus) - held} and {held}; change {part} size or add data",
            path=path,
        )
    try:
        kept, taken = train_test_split(
            np.arange(len(corpus)), test_size=size, random_state=seed, stratify=corpus.labels
        )
    except ValueError as exc:
        raise DataError(f"cannot carve a stratified {part} split: {exc}", path=path) from exc
    return _subset(corpus, kept), _subset(corpus, taken)


def training_labels(full: Corpus, train: Corpus, path: Path | None) -> tuple[str, ...]:
    labels = tuple(sorted(set(train.labels)))
    lost = sorted(set(full.labels) - set(labels))
    if lost:
        raise DataError(
            f"labels {lost} ended up only in the validation split; add examples for them",
            path=path,
        )
    return labels


def check_known_labels(test: Corpus, labels: Sequence[str], path: Path) -> None:
    unseen = sorted(set(test.labels) - set(labels))
    if unseen:
        raise DataError(
            f"test labels not in the training data: {_preview(unseen)}; the model cannot "
            f"predict them (training labels: {_preview(list(labels))})",
            path=path,
        )


def _subset(corpus: Corpus, indices: Iterable[int]) -> Corpus:
    picked = [int(i) for i in indices]
    return Corpus(
        texts=[corpus.texts[i] for i in picked], labels=[corpus.labels[i] for i in picked]
    )


def _counts(counts: dict[str, int]) -> str:
    return _preview([f"{label!r} ({n})" for label, n in counts.items()], quote=False)


def _preview(items: Sequence[str], *, limit: int = 10, quote: bool = True) -> str:
    """Short list for messages: 500 unseen labels should not flood the terminal."""
    shown = [repr(item) if quote else item for item in items[:limit]]
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return "[" + ", ".join(shown) + more + "]"
