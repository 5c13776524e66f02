"""Loading and splitting the texts a model learns from.

Two sources: 20 Newsgroups (bydate split, from a local archive or scikit-learn's downloader) and
user files (CSV, TSV, JSONL or a folder with one sub-folder per label). Everything is validated on
the way in, because a bad row found here costs seconds while one found mid-training costs minutes
and arrives as an unreadable stack trace; every problem becomes a `DataError` naming the file, the
row and what is wrong.

The validation split is always carved from the training data, never from the test data, so test
scores stay honest. Splits are stratified and seeded, so the same config gives the same split.
"""

from __future__ import annotations

import csv
import json
import math
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from textclf.config import TWENTY_NEWSGROUPS, DataConfig
from textclf.errors import DataError

NEWSGROUPS_CATEGORIES = (
    "alt.atheism",
    "comp.graphics",
    "comp.os.ms-windows.misc",
    "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware",
    "comp.windows.x",
    "misc.forsale",
    "rec.autos",
    "rec.motorcycles",
    "rec.sport.baseball",
    "rec.sport.hockey",
    "sci.crypt",
    "sci.electronics",
    "sci.med",
    "sci.space",
    "soc.religion.christian",
    "talk.politics.guns",
    "talk.politics.mideast",
    "talk.politics.misc",
    "talk.religion.misc",
)

_BYDATE_DIRS = {"train": "20news-bydate-train", "test": "20news-bydate-test"}
# Same order as fetch_20newsgroups applies them, so both paths give identical texts.
_STRIPPERS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("headers", strip_newsgroup_header),
    ("footers", strip_newsgroup_footer),
    ("quotes", strip_newsgroup_quoting),
)
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SUPPORTED = ".csv, .tsv, .jsonl/.ndjson, or a folder with one sub-folder per label"
# Long documents easily exceed the csv module's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 2**31 - 1

# (category, file name, text): file names are kept only to order documents like load_files does.
_Doc = tuple[str, str, str]
# (path, format, text column, label column, progress) -> (texts, labels)
_Reader = Callable[[Path, str, str, str, bool], tuple[list[str], list[str]]]


@dataclass(frozen=True)
class Corpus:
    """Texts and their label names, aligned by position."""

    texts: list[str]
    labels: list[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)


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
    train, val = _stratified_split(
        full, config.val_size, config.seed, part="validation", path=config.data
    )
    labels = _training_labels(full, train, config.data)
    if config.test_data is not None:
        _check_known_labels(test, labels, config.test_data)
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
        full = _select_categories(full, config.categories, config.data, strict=True)
        _check_trainable(full, config.data)
    if config.test_data is not None:
        test, _ = _read_user_data(config.test_data, config, progress=progress)
        test = _select_categories(test, config.categories, config.test_data, strict=False)
        return full, fmt, test, str(config.test_data)
    if config.data is None:
        return full, fmt, corpora[1], "20newsgroups test split"
    full, test = _stratified_split(
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
        corpus = _select_categories(corpus, config.categories, path, strict=False)
        if not len(corpus):
            raise DataError(f"no rows with the labels {list(config.categories or ())}", path=path)
        split = "whole file"
    description = _describe(config, path, fmt)
    description["split"] = split
    description["sizes"] = {"test": len(corpus)}
    return corpus, description


# --- 20 Newsgroups -------------------------------------------------------------------------------


def _newsgroups(
    config: DataConfig, subsets: Sequence[str], *, progress: bool
) -> tuple[list[Corpus], str]:
    """Bydate subsets (one archive pass for all), ordered by category then file name like
    scikit-learn's load_files, with `config.remove` applied; also returns the source format."""
    if config.archive is not None:
        by_subset, fmt = _read_bydate_archive(config.archive, subsets, progress=progress)
        available = sorted({category for category, _, _ in by_subset[subsets[0]]})
    else:
        _check_categories(config.categories, NEWSGROUPS_CATEGORIES)  # before any download
        by_subset = {s: _fetch_bydate(s, config.categories) for s in subsets}
        fmt, available = "sklearn fetch_20newsgroups", list(NEWSGROUPS_CATEGORIES)
    wanted = set(_check_categories(config.categories, available))
    corpora = []
    for subset in subsets:
        docs = sorted(doc for doc in by_subset[subset] if doc[0] in wanted)
        texts = [_strip(text, config.remove) for _, _, text in docs]
        corpora.append(Corpus(texts=texts, labels=[category for category, _, _ in docs]))
    return corpora, fmt


def _check_categories(categories: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if categories is None:
        return list(available)
    unknown = sorted(set(categories) - set(available))
    if unknown:
        raise DataError(
            f"unknown 20 Newsgroups categories {unknown}; choose from {list(available)}"
        )
    return sorted(set(categories))


def _strip(text: str, remove: Sequence[str]) -> str:
    for part, strip in _STRIPPERS:
        if part in remove:
            text = strip(text)
    return text


def _read_bydate_archive(
    archive: Path, subsets: Sequence[str], *, progress: bool
) -> tuple[dict[str, list[_Doc]], str]:
    """Read a `20news-bydate.tar.gz` (in place, no extraction) or its extracted folder."""
    if not archive.exists():
        raise DataError("20 Newsgroups archive not found", path=archive)
    if archive.is_dir():
        docs, fmt = _read_bydate_folder(archive, subsets, progress=progress), "20news-bydate folder"
    else:
        docs, fmt = (
            _read_bydate_tarball(archive, subsets, progress=progress),
            "20news-bydate.tar.gz",
        )
    for subset in subsets:
        if not docs[subset]:
            raise DataError(
                f"no documents under {_BYDATE_DIRS[subset]}/; expected the 20news-bydate layout "
                f"({_BYDATE_DIRS['train']}/<category>/<file>, {_BYDATE_DIRS['test']}/...)",
                path=archive,
            )
    return docs, fmt


def _read_bydate_tarball(
    archive: Path, subsets: Sequence[str], *, progress: bool
) -> dict[str, list[_Doc]]:
    wanted = {_BYDATE_DIRS[subset]: subset for subset in subsets}
    docs: dict[str, list[_Doc]] = {subset: [] for subset in subsets}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tqdm(tar, desc="20 Newsgroups", unit=" files", disable=not progress):
                parts = PurePosixPath(member.name).parts
                # parts[-3] rather than parts[0]: tolerate an extra top-level folder.
                if not member.isfile() or len(parts) < 3 or parts[-3] not in wanted:
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    text = handle.read().decode("latin-1")
                    docs[wanted[parts[-3]]].append((parts[-2], parts[-1], text))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(
            f"cannot read the 20 Newsgroups archive ({exc}); expected 20news-bydate.tar.gz",
            path=archive,
        ) from exc
    return docs


def _read_bydate_folder(
    root: Path, subsets: Sequence[str], *, progress: bool
) -> dict[str, list[_Doc]]:
    files = [
        (subset, category.name, file)
        for subset in subsets
        if (root / _BYDATE_DIRS[subset]).is_dir()
        for category in sorted((root / _BYDATE_DIRS[subset]).iterdir())
        if category.is_dir()
        for file in sorted(category.iterdir())
        if file.is_file()
    ]
    docs: dict[str, list[_Doc]] = {subset: [] for subset in subsets}
    for subset, category, file in tqdm(
        files, desc="20 Newsgroups", unit=" files", disable=not progress
    ):
        docs[subset].append((category, file.name, file.read_bytes().decode("latin-1")))
    return docs


def _fetch_bydate(subset: str, categories: Sequence[str] | None) -> list[_Doc]:
    """The online path: scikit-learn downloads (checksum-verified) and caches the archive."""
    from sklearn.datasets import fetch_20newsgroups

    try:
        bunch = fetch_20newsgroups(
            subset=subset,
            categories=None if categories is None else sorted(set(categories)),
            shuffle=False,
        )
    except OSError as exc:
        raise DataError(
            f"cannot download 20 Newsgroups ({exc}); pass a local 20news-bydate.tar.gz as the "
            "archive instead"
        ) from exc
    names = list(bunch.target_names)
    return [
        (names[int(target)], Path(filename).name, text)
        for target, filename, text in zip(bunch.target, bunch.filenames, bunch.data, strict=True)
    ]


# --- user files ----------------------------------------------------------------------------------


def _reject_remove(config: DataConfig) -> None:
    # Training on user data while asking to strip newsgroup headers is a mistake worth stopping:
    # silently ignoring it would train on different text than the user asked for.
    if config.remove:
        raise DataError(
            f"remove={list(config.remove)} only applies to 20 Newsgroups; "
            "user data is used as given"
        )


def _read_user_data(path: Path, config: DataConfig, *, progress: bool) -> tuple[Corpus, str]:
    """Read a CSV/TSV/JSONL file or a label-per-folder tree into a corpus; returns its format."""
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
        texts, labels = reader(path, fmt, config.text_column, config.label_column, progress)
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
            for fields in tqdm(reader, desc=path.name, unit=" rows", disable=not progress):
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
        lines = tqdm(handle, desc=path.name, unit=" lines", disable=not progress)
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
    for label, file in tqdm(files, desc=root.name, unit=" files", disable=not progress):
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


# --- checks and splits ---------------------------------------------------------------------------


def _select_categories(
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


def _check_trainable(corpus: Corpus, path: Path | None) -> None:
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


def _stratified_split(
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


def _training_labels(full: Corpus, train: Corpus, path: Path | None) -> tuple[str, ...]:
    labels = tuple(sorted(set(train.labels)))
    lost = sorted(set(full.labels) - set(labels))
    if lost:
        raise DataError(
            f"labels {lost} ended up only in the validation split; add examples for them",
            path=path,
        )
    return labels


def _check_known_labels(test: Corpus, labels: Sequence[str], path: Path) -> None:
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


def _counts(counts: dict[str, int]) -> str:
    return _preview([f"{label!r} ({n})" for label, n in counts.items()], quote=False)


def _preview(items: Sequence[str], *, limit: int = 10, quote: bool = True) -> str:
    """Short list for messages: 500 unseen labels should not flood the terminal."""
    shown = [repr(item) if quote else item for item in items[:limit]]
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return "[" + ", ".join(shown) + more + "]"
