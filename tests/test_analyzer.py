"""The word analyzer must give scikit-learn's tokens exactly: training and serving both use it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from textclf.analyzer import WordAnalyzer, english_stop_words
from textclf.config import DataConfig
from textclf.data import load_splits
from textclf.features import subject_lines

UNICODE = [
    "",
    "a b c x y z",  # one-letter words are not tokens
    "naïve café résumé Ångström ÉCOLE",
    "İstanbul ΣΊΣΥΦΟΣ straße ǅemal ﬁne",  # case mappings that change length or are odd
    "ロケットの打ち上げ 火箭发射 الإطلاق تأجل שיגור",
    "🚀🚀 launch 🌍 orbit ✨ x²³ ½ ٣٤ ⅷ",
    "snake_case __init__ 3.14 1993 e-mail@x.org C++ don't",
    "nul\x00byte \x07bell \x1b[31m tab\tcr\rff\x0cvt\x0bend",
    "lone surrogate \ud800 here",
    "MiXeD CaSe ASCII ONLY",
    "word\u00a0nbsp\u2003em\u3000ideographic",  # Unicode spaces
]
SETTINGS = [
    {"ngram_range": (1, 1)},
    {"ngram_range": (1, 2)},
    {"ngram_range": (2, 3)},
    {"ngram_range": (1, 3), "lowercase": False},
    {"ngram_range": (1, 2), "stop_words": "english"},
]


@pytest.fixture(scope="module")
def corpus(archive: Path) -> list[str]:
    """Every 20 Newsgroups training post (train and validation splits), and its subject line."""
    splits = load_splits(DataConfig(archive=archive))
    texts = splits.train.texts + splits.val.texts
    return texts + subject_lines(texts)


def _pair(settings: dict[str, object]) -> tuple[WordAnalyzer, object]:
    stop = settings.get("stop_words")
    ours = WordAnalyzer(
        settings["ngram_range"],  # type: ignore[arg-type]
        lowercase=bool(settings.get("lowercase", True)),
        stop_words=english_stop_words() if stop else None,
    )
    theirs = TfidfVectorizer(**settings).build_analyzer()  # type: ignore[arg-type]
    return ours, theirs


@pytest.mark.parametrize("settings", SETTINGS)
def test_matches_scikit_learn_on_odd_unicode(settings: dict[str, object]) -> None:
    ours, theirs = _pair(settings)
    for text in UNICODE:
        assert ours(text) == theirs(text), text  # type: ignore[operator]


@pytest.mark.parametrize("settings", [SETTINGS[1], SETTINGS[3]])
def test_matches_scikit_learn_on_all_of_20_newsgroups(
    corpus: list[str], settings: dict[str, object]
) -> None:
    ours, theirs = _pair(settings)
    mismatches = [t for t in corpus if ours(t) != theirs(t)]  # type: ignore[operator]
    assert not mismatches, mismatches[:3]


def test_most_20_newsgroups_posts_take_the_ascii_path(corpus: list[str]) -> None:
    # The fast path must be the common one, or serving is no faster than the regex.
    share = sum(text.isascii() for text in corpus) / len(corpus)
    assert share > 0.9


def test_raw_ascii_tokens_count_the_same_unigrams(corpus: list[str]) -> None:
    """Serving looks raw tokens up in a unigram vocabulary: after dropping one-letter tokens,
    they must be exactly the analyzer's terms, in order."""
    analyzer = WordAnalyzer((1, 1))
    for text in corpus[:2000] + UNICODE:
        raw = analyzer.raw_ascii_tokens(text)
        if raw is None:
            assert not text.isascii()
            continue
        assert [t.decode() for t in raw if len(t) > 1] == analyzer(text)


def test_stop_words_are_scikit_learns() -> None:
    assert english_stop_words() == ENGLISH_STOP_WORDS


def test_unigrams_only() -> None:
    assert WordAnalyzer((1, 1)).unigrams_only
    assert not WordAnalyzer((1, 2)).unigrams_only
