"""Bigram TF-IDF for the second naive Bayes term, counted in numpy from token ids.

Word pairs carry what single words cannot ("space station", "hard drive"), and naive Bayes over
them helps short, quoted-out posts most: on 20 Newsgroups with headers removed it lowers
validation log-loss by 0.012 and lifts test accuracy from 0.727 to 0.731 (BENCHMARKS.md). The
MLP does not read them (too many rare features for its first layer); a naive Bayes term weighed
on validation does, and validation drops the term where it does not help (`textclf/train.py`).

scikit-learn's bigram `TfidfVectorizer` builds a string per word pair and takes 4-6 s on the
20 Newsgroups training set. Here each word becomes an integer id once, a pair is two ids packed
into one int64 key, and counting is a few sorts, so fitting takes about a second. The result
is the TF-IDF scikit-learn would give for `analyzer` = these words' bigrams and `min_df`:
sublinear tf, smooth idf, rows L2-normalised (the tests check it).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from textclf.analyzer import WordAnalyzer

_SKIP = -2  # a token the analyzer would drop: left out, without breaking the pairs around it


@dataclass
class BigramVocabulary:
    """The fitted state: known words, known pairs of them (as sorted packed keys), their idf."""

    words: list[str]
    keys: np.ndarray  # int64, sorted: first word's id * len(words) + second word's id
    idf: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def terms(self) -> list[str]:
        """The pairs as scikit-learn names them ("space station"), in column order, which is
        also scikit-learn's (a space sorts before every word character)."""
        first, second = np.divmod(self.keys, max(len(self.words), 1))
        pairs = zip(first.tolist(), second.tolist(), strict=True)
        return [f"{self.words[a]} {self.words[b]}" for a, b in pairs]

    def state(self) -> dict[str, Any]:
        """JSON-ready: pairs as [first id, second id] rather than strings (smaller, faster)."""
        first, second = np.divmod(self.keys, max(len(self.words), 1))
        return {
            "words": list(self.words),
            "pairs": np.stack([first, second], axis=1).tolist(),
            "idf": self.idf.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BigramVocabulary:
        """Raises ValueError on malformed state (the artifact loader reports it)."""
        words, pairs = state["words"], np.asarray(state["pairs"], dtype=np.int64)
        idf = np.asarray(state["idf"], dtype=np.float64)
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("bigram 'words' must be a list of strings")
        if len(set(words)) != len(words):
            raise ValueError("duplicate bigram words")
        pairs = pairs.reshape(-1, 2)
        if len(pairs) != len(idf) or idf.ndim != 1 or not np.all(np.isfinite(idf)):
            raise ValueError(f"{len(pairs)} bigrams but {idf.size} finite idf values expected")
        if pairs.size and (pairs.min() < 0 or pairs.max() >= len(words)):
            raise ValueError("bigram pairs refer to unknown words")
        keys = pairs[:, 0] * len(words) + pairs[:, 1]
        if np.any(np.diff(keys) <= 0):
            raise ValueError("bigram pairs must be unique and sorted")
        return cls(words, keys, idf)


class Bigrams:
    """Fit and transform the bigram TF-IDF of `analyzer`'s words."""

    def __init__(self, analyzer: WordAnalyzer, min_df: int) -> None:
        self.analyzer = analyzer
        self.min_df = min_df
        self.vocabulary: BigramVocabulary | None = None
        self._ids: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.vocabulary) if self.vocabulary is not None else 0

    def fit_transform(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Learn the bigrams seen in at least `min_df` texts; their TF-IDF rows as CSR arrays."""
        words = [self._words(text) for text in texts]
        # Number every distinct word (in C); only those in a chosen pair are kept at the end.
        seen = [
            w for w in dict.fromkeys(itertools.chain.from_iterable(words)) if w not in self._skip
        ]
        self._ids = {**{w: i for i, w in enumerate(seen)}, **self._skip}
        doc, keys = self._pairs(words, len(seen))
        order = np.lexsort((keys, doc))  # by text, then by pair: each text's pairs grouped
        doc, keys = doc[order], keys[order]
        starts = np.ones(len(keys), bool)  # a pair's first occurrence in its text
        starts[1:] = (doc[1:] != doc[:-1]) | (keys[1:] != keys[:-1])
        pair_keys, key_index = np.unique(keys[starts], return_inverse=True)
        pair_df = np.bincount(key_index, minlength=len(pair_keys))
        chosen = pair_df >= self.min_df
        idf = np.log((1 + len(texts)) / (1 + pair_df[chosen])) + 1.0
        self.vocabulary, column_of = _compact(seen, pair_keys[chosen], idf)
        self._ids = self._lookup(self.vocabulary.words)
        counts = np.diff(np.append(np.flatnonzero(starts), len(keys)))
        keep = chosen[key_index]
        column = column_of[(np.cumsum(chosen) - 1)[key_index[keep]]]
        return self._tfidf(doc[starts][keep], column, counts[keep], len(texts))

    def transform(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TF-IDF rows (indptr, column indices, float32 values), one row per text."""
        vocabulary = self._fitted()
        if not self._ids:
            self._ids = self._lookup(vocabulary.words)
        doc, keys = self._pairs([self._words(t) for t in texts], len(vocabulary.words))
        column = np.searchsorted(vocabulary.keys, keys)
        column[column == len(vocabulary)] = 0
        hit = vocabulary.keys[column] == keys if len(vocabulary) else np.zeros(len(keys), bool)
        width = max(len(vocabulary), 1)
        cells, counts = np.unique(doc[hit] * width + column[hit], return_counts=True)
        rows, columns = np.divmod(cells, width)
        return self._tfidf(rows, columns, counts, len(texts))

    def _words(self, text: str) -> list[bytes]:
        """The analyzer's words as UTF-8 bytes. ASCII text takes the fast split, which also
        yields one-character tokens and stop words: they map to `_SKIP` and are dropped
        before pairing, as the analyzer drops them before forming n-grams."""
        raw = self.analyzer.raw_ascii_tokens(text)
        if raw is not None:
            return raw
        return [w.encode("utf-8", "surrogatepass") for w in self.analyzer.words(text)]

    @cached_property
    def _skip(self) -> dict[bytes, int]:
        single = [bytes([b]) for b in range(128) if bytes([b]).isalnum() or b == ord("_")]
        stop = [w.encode() for w in self.analyzer.stop_words or ()]
        return dict.fromkeys([*single, *stop], _SKIP)

    def _lookup(self, words: list[str]) -> dict[bytes, int]:
        ids = {w.encode("utf-8", "surrogatepass"): i for i, w in enumerate(words)}
        return {**ids, **self._skip}

    def _pairs(self, words: list[list[bytes]], n_words: int) -> tuple[np.ndarray, np.ndarray]:
        """Each adjacent pair of known words: its text's row and its packed key."""
        sizes = np.fromiter(map(len, words), np.int64, len(words))
        flat = itertools.chain.from_iterable(words)
        ids = np.fromiter(map(self._ids.get, flat, itertools.repeat(-1)), np.int64, sizes.sum())
        doc = np.repeat(np.arange(len(words), dtype=np.int64), sizes)
        kept = ids != _SKIP
        ids, doc = ids[kept], doc[kept]
        both = (ids[:-1] >= 0) & (ids[1:] >= 0) & (doc[:-1] == doc[1:])
        return doc[:-1][both], ids[:-1][both] * n_words + ids[1:][both]

    def _tfidf(
        self, rows: np.ndarray, columns: np.ndarray, counts: np.ndarray, n_rows: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays from (row, column, count) cells sorted by row: sublinear tf, idf, L2."""
        values = (np.log(counts) + 1.0) * self._fitted().idf[columns]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_rows))
        values /= norms[rows]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
        return indptr.astype(np.int64), columns.astype(np.int64), values.astype(np.float32)

    def state(self) -> dict[str, Any]:
        return self._fitted().state()

    def _fitted(self) -> BigramVocabulary:
        if self.vocabulary is None:
            raise RuntimeError("the bigrams are not fitted yet: call fit_transform() first")
        return self.vocabulary


def _compact(
    words: list[bytes], keys: np.ndarray, idf: np.ndarray
) -> tuple[BigramVocabulary, np.ndarray]:
    """Only the words some pair uses, sorted, and the pairs' keys renumbered to match and
    sorted; with each pair's new column, by its old one."""
    first, second = np.divmod(keys, max(len(words), 1))
    used = np.unique(np.concatenate([first, second]))
    kept = [words[i].decode("utf-8", "surrogatepass") for i in used]
    rank = np.argsort(np.argsort(kept, kind="stable"))  # each kept word's place when sorted
    renumber = np.full(len(words), -1, np.int64)
    renumber[used] = rank
    new_keys = renumber[first] * len(kept) + renumber[second]
    order = np.argsort(new_keys, kind="stable")
    column_of = np.empty_like(order)
    column_of[order] = np.arange(len(order))
    return BigramVocabulary(sorted(kept), new_keys[order], idf[order]), column_of
