"""The word-pair TF-IDF, checked against scikit-learn's bigram `TfidfVectorizer`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from textclf.analyzer import WordAnalyzer, english_stop_words
from textclf.bigrams import Bigrams, BigramVocabulary

TRAIN = [
    "The space station orbits the earth; the space station is big.",
    "A space shuttle docked at the space station",
    "The hard drive and the floppy drive failed",
    "my hard drive is a hard drive",
    "naïve café owners like the space station and a café au lait",
    "naïve café a b c space station",
    "I I a x y z the the the",
    "",
    "ロケット 打ち上げ ロケット 打ち上げ",
    "ロケット 打ち上げ",
]
TEST = [
    "the space station and the hard drive",
    "",
    "nothing known here zzz",
    "naïve café space station a space station",
    "ロケット 打ち上げ",
    "SPACE STATION",
]


def _csr(arrays: tuple[np.ndarray, np.ndarray, np.ndarray], width: int) -> sp.csr_matrix:
    indptr, indices, data = arrays
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, width))
    matrix.sort_indices()
    return matrix


@pytest.mark.parametrize(
    "options",
    [{}, {"stop_words": english_stop_words()}, {"lowercase": False}],
    ids=["plain", "stop words", "case kept"],
)
def test_equals_scikit_learns_bigram_tfidf(options: dict[str, Any]) -> None:
    """Vocabulary, idf and rows, for fitting and for transforming, ASCII and not."""
    ours = Bigrams(WordAnalyzer(**options), min_df=2)
    fitted = ours.fit_transform(TRAIN)
    theirs = TfidfVectorizer(analyzer=WordAnalyzer((2, 2), **options), min_df=2, sublinear_tf=True)
    expected = theirs.fit_transform(TRAIN)
    assert ours.vocabulary is not None
    assert ours.vocabulary.terms == list(theirs.get_feature_names_out())
    np.testing.assert_allclose(ours.vocabulary.idf, theirs.idf_, rtol=1e-15)
    for got, want in ((fitted, expected), (ours.transform(TEST), theirs.transform(TEST))):
        got_matrix = _csr(got, len(ours))
        want = want.copy()
        want.sort_indices()  # scikit-learn's fit_transform leaves them in first-seen order
        assert np.array_equal(got_matrix.indptr, want.indptr)
        assert np.array_equal(got_matrix.indices, want.indices)
        np.testing.assert_allclose(got_matrix.data, want.data, rtol=1e-6)
        assert got[2].dtype == np.float32


def test_pairs_skip_dropped_tokens_but_never_cross_texts() -> None:
    """One-letter tokens and stop words are left out *between* words, as scikit-learn's
    analyzer drops them before pairing, while the last word of one text never pairs with the
    first word of the next."""
    ours = Bigrams(WordAnalyzer(stop_words=["the"]), min_df=1)
    ours.fit_transform(["space a the station", "orbit", "earth"])
    assert ours.vocabulary is not None
    assert ours.vocabulary.terms == ["space station"]  # no "orbit earth"


def test_rare_pairs_and_their_words_are_not_kept() -> None:
    ours = Bigrams(WordAnalyzer(), min_df=2)
    ours.fit_transform(["red apple green pear", "red apple", "blue sky"])
    assert ours.vocabulary is not None
    assert ours.vocabulary.terms == ["red apple"]
    assert ours.vocabulary.words == ["apple", "red"]  # only words some kept pair uses


def test_state_round_trips_through_json_types() -> None:
    ours = Bigrams(WordAnalyzer(), min_df=2)
    ours.fit_transform(TRAIN)
    restored = Bigrams(WordAnalyzer(), min_df=2)
    restored.vocabulary = BigramVocabulary.from_state(ours.state())
    for a, b in zip(ours.transform(TEST), restored.transform(TEST), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"words": ["a", "a"]}, "duplicate"),
        ({"words": "ab"}, "list of strings"),
        ({"idf": [1.0]}, "idf"),
        ({"idf": [float("nan"), 1.0]}, "idf"),
        ({"pairs": [[0, 5], [1, 0]]}, "unknown words"),
        ({"pairs": [[1, 0], [0, 1]]}, "sorted"),
    ],
)
def test_malformed_state_is_refused(change: dict[str, Any], message: str) -> None:
    state = {"words": ["a", "b"], "pairs": [[0, 1], [1, 0]], "idf": [1.0, 2.0], **change}
    with pytest.raises(ValueError, match=message):
        BigramVocabulary.from_state(state)


def test_no_texts_and_no_pairs() -> None:
    ours = Bigrams(WordAnalyzer(), min_df=2)
    indptr, indices, data = ours.fit_transform(["one", "two"])
    assert len(ours) == 0 and list(indptr) == [0, 0, 0] and indices.size == data.size == 0
    indptr, indices, data = ours.transform([])
    assert list(indptr) == [0] and indices.size == 0
    with pytest.raises(RuntimeError, match="not fitted"):
        Bigrams(WordAnalyzer(), min_df=2).transform(["text"])
