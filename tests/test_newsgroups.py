"""Tests for textclf.newsgroups on the real archive: the same texts, labels and order as
scikit-learn's public fetch_20newsgroups, for every removal."""

from __future__ import annotations

import pickle
import re
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from sklearn.datasets import fetch_20newsgroups, load_files

from textclf.config import TUTORIAL_CATEGORIES, DataConfig
from textclf.corpus import Corpus
from textclf.data import load_test
from textclf.errors import DataError
from textclf.newsgroups import NEWSGROUPS_CATEGORIES, load_bydate, remove_parts

SUBSETS = ("train", "test")
ALL_PARTS = ("headers", "footers", "quotes")
TWO_CATEGORIES = ("rec.sport.baseball", "sci.space")


@pytest.fixture(scope="module")
def bydate(archive: Path) -> list[Corpus]:
    """Both subsets as they are, all categories."""
    return load_bydate(SUBSETS, archive=archive)[0]


@pytest.fixture(scope="module")
def extracted(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole archive extracted to disk, as a user (or scikit-learn's downloader) has it."""
    root = tmp_path_factory.mktemp("bydate")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root


@pytest.fixture(scope="module")
def sklearn_home(extracted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scikit-learn data_home from which fetch_20newsgroups(download_if_missing=False) reads
    this archive offline.

    scikit-learn does not take the archive itself here: it would reuse a 20news-bydate.tar.gz
    found in data_home/20news_home/ only if its SHA-256 matched figshare's copy, and the project's
    archive is a repack (another checksum), so it would try to download. So this does what its
    downloader does after downloading: load_files on each extracted subset (latin-1), pickled and
    zlib-compressed into data_home/20news-bydate_py3.pkz, the cache fetch_20newsgroups reads.
    Ordering, category selection and removal are then all fetch_20newsgroups's own. Should a
    scikit-learn release rename that cache, fetch_20newsgroups raises OSError and the tests fail.
    """
    home = tmp_path_factory.mktemp("scikit_learn_data")
    cache = {s: load_files(extracted / f"20news-bydate-{s}", encoding="latin1") for s in SUBSETS}
    # zlib as scikit-learn writes it (codecs' "zlib_codec"), at level 1: the same format, faster.
    (home / "20news-bydate_py3.pkz").write_bytes(zlib.compress(pickle.dumps(cache), 1))
    return home


def sklearn_corpus(
    home: Path, subset: str, remove: tuple[str, ...], categories: Sequence[str] | None = None
) -> Corpus:
    """fetch_20newsgroups's posts in this project's order: category, then file name.

    Its own order, even with shuffle=False, is the shuffle load_files (random_state=0) gave the
    cache when it was built; bunch.filenames names each post, so posts are paired by file.
    """
    bunch = fetch_20newsgroups(
        data_home=home,
        subset=subset,
        categories=categories,
        remove=remove,
        shuffle=False,
        download_if_missing=False,
    )
    posts = sorted(
        (bunch.target_names[target], Path(filename).parent.name, Path(filename).name, text)
        for target, filename, text in zip(bunch.target, bunch.filenames, bunch.data, strict=True)
    )
    assert all(label == folder for label, folder, _, _ in posts)
    assert len({(label, name) for label, _, name, _ in posts}) == len(posts)
    return Corpus(texts=[text for *_, text in posts], labels=[label for label, *_ in posts])


def assert_same(ours: Corpus, theirs: Corpus, subset: str) -> None:
    """Text for text, in order; on failure name the first post that differs (not an 11k diff)."""
    assert len(ours) == len(theirs), subset
    assert ours.labels == theirs.labels, subset
    for i, (mine, sklearns) in enumerate(zip(ours.texts, theirs.texts, strict=True)):
        assert mine == sklearns, f"{subset} post {i} ({ours.labels[i]}) differs"


# --- the same texts as scikit-learn ---------------------------------------------------------------


@pytest.mark.parametrize(
    "remove",
    [(), ("headers",), ("footers",), ("quotes",), ALL_PARTS],
    ids=lambda r: "+".join(r) or "none",
)
def test_texts_equal_fetch_20newsgroups(
    bydate: list[Corpus], sklearn_home: Path, remove: tuple[str, ...]
) -> None:
    """Every post of both subsets; load_bydate applies remove_parts to each text it reads (the
    archive is read once for all: the download-path test below reads it with removals)."""
    for subset, raw in zip(SUBSETS, bydate, strict=True):
        ours = Corpus(texts=[remove_parts(text, remove) for text in raw.texts], labels=raw.labels)
        assert_same(ours, sklearn_corpus(sklearn_home, subset, remove), subset)
    assert [len(corpus) for corpus in bydate] == [11_314, 7_532]


def test_category_selection_equals_fetch_20newsgroups(archive: Path, sklearn_home: Path) -> None:
    unsorted = tuple(reversed(sorted(TUTORIAL_CATEGORIES)))
    ours = load_bydate(SUBSETS, archive=archive, categories=unsorted)[0]
    for subset, corpus in zip(SUBSETS, ours, strict=True):
        theirs = sklearn_corpus(sklearn_home, subset, (), categories=unsorted)
        assert_same(corpus, theirs, subset)
        assert sorted(set(corpus.labels)) == sorted(TUTORIAL_CATEGORIES)


def test_download_path_matches_archive(
    archive: Path, sklearn_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No archive: read through fetch_20newsgroups (its cache found via SCIKIT_LEARN_DATA)."""
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(sklearn_home))
    fetched, description = load_test(DataConfig(categories=TWO_CATEGORIES, remove=ALL_PARTS))
    local, _ = load_test(DataConfig(archive=archive, categories=TWO_CATEGORIES, remove=ALL_PARTS))
    assert fetched == local
    assert description["format"] == "sklearn fetch_20newsgroups"


def test_remove_parts_rules() -> None:
    post = (
        "From: a@b\nSubject: s\n\nIn article <1@c> d writes:\n> quoted\n| too\nbody\n\n-- \nsig\n"
    )
    assert remove_parts(post, ()) == post
    assert remove_parts(post, ("headers",)).startswith("In article")
    assert remove_parts(post, ("headers", "footers")) == (
        "In article <1@c> d writes:\n> quoted\n| too\nbody\n"
    )
    assert remove_parts(post, ALL_PARTS) == "body\n"
    assert remove_parts("no blank line, all header", ("headers",)) == ""
    # No separator (or only one on the first line): the text stays exactly as it was.
    assert remove_parts("  one line  \n", ("footers",)) == "  one line  \n"
    assert remove_parts("----\nbody\n", ("footers",)) == "----\nbody\n"
    # Quote markers count only at the start of a line; "writes:" and friends anywhere.
    assert remove_parts(" > kept\nhe said: no\n", ("quotes",)) == " > kept\n"


def test_remove_headers_drops_from_lines(archive: Path, bydate: list[Corpus]) -> None:
    has_from_line = re.compile(r"^From:", re.MULTILINE).search
    assert all(has_from_line(text) for corpus in bydate for text in corpus.texts)
    (stripped,), _ = load_bydate(("test",), archive=archive, remove=("headers",))
    # A few posts quote a forwarded message's headers in their body; those stay.
    assert sum(bool(has_from_line(text)) for text in stripped.texts) < 0.01 * len(stripped)


# --- reading the archive --------------------------------------------------------------------------


def test_order_and_labels(bydate: list[Corpus]) -> None:
    for corpus in bydate:
        assert corpus.labels == sorted(corpus.labels)  # category, then file name
        assert tuple(sorted(set(corpus.labels))) == NEWSGROUPS_CATEGORIES


def test_extracted_folder_matches_tarball(
    extracted: Path, bydate: list[Corpus], capsys: pytest.CaptureFixture[str]
) -> None:
    from_folder, fmt = load_bydate(SUBSETS, archive=extracted, progress=True)
    assert from_folder == bydate
    assert fmt == "20news-bydate folder"
    # Off a terminal, progress is one summary line and no carriage-return redraws.
    err = capsys.readouterr().err
    assert re.fullmatch(r"20 Newsgroups: 18,846 files in \d+\.\ds\n", err), err


def test_tarball_format_and_category_subset(archive: Path) -> None:
    (test,), fmt = load_bydate(("test",), archive=archive, categories=TUTORIAL_CATEGORIES)
    assert fmt == "20news-bydate.tar.gz"
    assert {label: test.labels.count(label) for label in set(test.labels)} == {
        "comp.graphics": 389,
        "rec.sport.baseball": 397,
        "sci.space": 394,
    }


def test_unknown_category_lists_valid_ones(archive: Path) -> None:
    with pytest.raises(DataError) as info:
        load_bydate(("test",), archive=archive, categories=("sci.space", "sci.spaec"))
    message = str(info.value)
    assert "sci.spaec" in message and "alt.atheism" in message and "talk.religion.misc" in message


def test_unknown_category_fails_before_any_download() -> None:
    with pytest.raises(DataError, match=r"unknown 20 Newsgroups categories \['comp\.grafics'\]"):
        load_bydate(SUBSETS, categories=("comp.grafics",))


def test_missing_archive(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar.gz"
    with pytest.raises(DataError, match="archive not found") as info:
        load_bydate(("test",), archive=missing)
    assert str(missing) in str(info.value)


def test_corrupt_archive(tmp_path: Path) -> None:
    broken = tmp_path / "20news-bydate.tar.gz"
    broken.write_bytes(b"this is not a tarball")
    with pytest.raises(DataError, match="cannot read the 20 Newsgroups archive") as info:
        load_bydate(("test",), archive=broken)
    assert info.value.path == broken


def test_archive_folder_without_bydate_layout(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    with pytest.raises(DataError, match="no documents under 20news-bydate-test/"):
        load_bydate(("test",), archive=tmp_path)
