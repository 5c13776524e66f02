"""20 Newsgroups, bydate split: read from a local archive (or its extracted folder) or through
scikit-learn's downloader, in scikit-learn's order, with headers, footers and quotes removed on
request exactly as `sklearn.datasets.fetch_20newsgroups(remove=...)` removes them.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from textclf.corpus import Corpus
from textclf.errors import DataError
from textclf.progress import bar

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

# (category, file name, text): file names are kept only to order documents like load_files does.
_Doc = tuple[str, str, str]


def load_bydate(
    subsets: Sequence[str],
    *,
    archive: Path | None = None,
    categories: Sequence[str] | None = None,
    remove: Sequence[str] = (),
    progress: bool = False,
) -> tuple[list[Corpus], str]:
    """One corpus per bydate subset ("train", "test"; one archive pass for all), with `remove`
    applied; also returns the source format. `archive=None` downloads through scikit-learn.

    Posts are ordered by category, then file name (load_files's order with shuffle=False), from
    either source: fetch_20newsgroups(shuffle=False) keeps the order its downloader's load_files
    shuffled them into (random_state=0), so its posts are sorted here too; texts are the same.
    """
    if archive is not None:
        by_subset, fmt = _read_bydate_archive(archive, subsets, progress=progress)
        available = sorted({category for category, _, _ in by_subset[subsets[0]]})
    else:
        _check_categories(categories, NEWSGROUPS_CATEGORIES)  # before any download
        by_subset = {s: _fetch_bydate(s, categories) for s in subsets}
        fmt, available = "sklearn fetch_20newsgroups", list(NEWSGROUPS_CATEGORIES)
    wanted = set(_check_categories(categories, available))
    corpora = []
    for subset in subsets:
        docs = sorted(doc for doc in by_subset[subset] if doc[0] in wanted)
        texts = [remove_parts(text, remove) for _, _, text in docs]
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


# --- removing headers, footers and quotes --------------------------------------------------------
# The three removals below reproduce scikit-learn's strip_newsgroup_header, strip_newsgroup_footer
# and strip_newsgroup_quoting (sklearn/datasets/_twenty_newsgroups.py, scikit-learn 1.9; copyright
# the scikit-learn developers, BSD-3-Clause licence), rule for rule, so that texts match
# fetch_20newsgroups(remove=...) exactly; tests/test_newsgroups.py checks that on the whole archive.


def _strip_header(text: str) -> str:
    """Everything after the first blank line (nothing if there is none)."""
    return text.partition("\n\n")[2]


def _strip_footer(text: str) -> str:
    """Drop a signature: from the last blank or all-hyphen line of the stripped text on. With no
    such line, or only the first line, the text is returned untouched (not even stripped)."""
    lines = text.strip().split("\n")
    cut = next((i for i in range(len(lines) - 1, 0, -1) if not lines[i].strip().strip("-")), 0)
    return "\n".join(lines[:cut]) if cut else text


# No re.MULTILINE: it is searched in one line at a time, where ^ is that line's start.
_QUOTE_RE = re.compile(r"(writes in|writes:|wrote:|says:|said:|^In article|^Quoted from|^\||^>)")


def _strip_quoting(text: str) -> str:
    """Drop lines starting with > or |, and lines that introduce a quote ("... writes:")."""
    return "\n".join(line for line in text.split("\n") if not _QUOTE_RE.search(line))


# In fetch_20newsgroups's order, which matters: a footer is found after the header is gone.
_REMOVERS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("headers", _strip_header),
    ("footers", _strip_footer),
    ("quotes", _strip_quoting),
)


def remove_parts(text: str, remove: Sequence[str]) -> str:
    """`text` without the parts named in `remove` ("headers", "footers", "quotes")."""
    for part, strip in _REMOVERS:
        if part in remove:
            text = strip(text)
    return text


# --- reading -------------------------------------------------------------------------------------


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
            files = (member for member in tar if member.isfile())
            for member in bar(files, desc="20 Newsgroups", unit="files", enabled=progress):
                parts = PurePosixPath(member.name).parts
                # parts[-3] rather than parts[0]: tolerate an extra top-level folder.
                if len(parts) < 3 or parts[-3] not in wanted:
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
    for subset, category, file in bar(files, desc="20 Newsgroups", unit="files", enabled=progress):
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
