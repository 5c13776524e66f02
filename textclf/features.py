"""TF-IDF features: fit, transform, save/restore as JSON, hand batches to torch.

Fitting uses scikit-learn's own `TfidfVectorizer` (document frequencies, `min_df`/`max_df`, idf,
sublinear tf and L2 norm are what its users know), with `textclf.analyzer`'s tokens, which equal
scikit-learn's. A model's input columns are the body's TF-IDF, optionally followed by a second,
weighted TF-IDF of the `Subject:` header line (see `FeatureConfig.subject_weight`), and last the
bigram TF-IDF that only the second naive Bayes term reads (`textclf/bigrams.py`). The fitted
state (terms, idf) is written as plain JSON, never pickled; transforming needs neither
scikit-learn nor SciPy, so a serving process imports neither. Nor does this module import torch
(only `to_torch` does, when called): a batch worker that scores with `textclf.host` never loads it.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import methodcaller
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from textclf.analyzer import WordAnalyzer, english_stop_words
from textclf.bigrams import Bigrams, BigramVocabulary
from textclf.config import FeatureConfig, feature_config_from_dict, to_dict

if TYPE_CHECKING:
    import scipy.sparse as sp
    import torch

STATE_VERSION = 1
# torch flags all sparse CSR use as "beta" on every call; the ops used here are long stable.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
_SUBJECT = re.compile(r"^subject:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
# Terms are looked up as UTF-8 bytes (the ASCII fast path yields bytes); "surrogatepass" because
# JSON can carry lone surrogates, which plain UTF-8 refuses to encode.
_to_bytes = methodcaller("encode", "utf-8", "surrogatepass")


@dataclass
class Vocabulary:
    """One fitted TF-IDF: its terms in column order and their idf."""

    terms: list[str]
    idf: np.ndarray  # float64, as scikit-learn keeps it

    def __len__(self) -> int:
        return len(self.terms)


class Encoded(NamedTuple):
    """A batch as CSR arrays (int64 indptr/indices, float32 data); column order within a row is
    first occurrence, not sorted."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_features: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1


class TextFeatures:
    """Texts -> CSR float32 rows: body TF-IDF [+ subject_weight * subject TF-IDF]."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        stop_words = english_stop_words() if config.stop_words == "english" else None
        self.body_analyzer = WordAnalyzer(
            config.ngram_range, lowercase=config.lowercase, stop_words=stop_words
        )
        self.subject_analyzer = WordAnalyzer(
            config.subject_ngram_range, lowercase=config.lowercase, stop_words=stop_words
        )
        self.body: Vocabulary | None = None
        self.subject: Vocabulary | None = None
        self.bigrams: Bigrams | None = None
        self._encoder: _Encoder | None = None

    @property
    def n_features(self) -> int:
        return self.n_word_features + self.n_bigrams

    @property
    def n_word_features(self) -> int:
        """The body's and the subject's columns: what the MLP's first layer reads."""
        return len(self._fitted_body()) + (len(self.subject) if self.subject is not None else 0)

    @property
    def n_bigrams(self) -> int:
        """The word-pair columns, last in each row (0 when there is no bigram part)."""
        return len(self.bigrams) if self.bigrams is not None else 0

    def keep_columns(self, n_features: int) -> None:
        """Match a model that reads the first `n_features` columns: training drops the word-pair
        part when validation finds its term does not pay, and then serving neither computes
        nor stores it."""
        if n_features == self.n_features:
            return
        if n_features != self.n_word_features:
            raise ValueError(
                f"a model reading {n_features} columns fits neither {self.n_features} nor the "
                f"{self.n_word_features} without word pairs"
            )
        self.bigrams, self._encoder = None, None

    def fit(self, texts: Sequence[str]) -> TextFeatures:
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        cfg = self.config
        body_tfidf = _tfidf(cfg, self.body_analyzer, cfg.min_df, cfg.max_df, cfg.max_features)
        matrix = body_tfidf.fit_transform(texts)
        self.body, self.subject, self.bigrams = _vocabulary(body_tfidf), None, None
        self._encoder = None
        if cfg.subject_weight > 0:
            subjects = subject_lines(texts)
            if any(subjects):
                subject_tfidf = _tfidf(cfg, self.subject_analyzer, 1, 1.0, None)
                subject = subject_tfidf.fit_transform(subjects)
                self.subject = _vocabulary(subject_tfidf)
                matrix = self._join(matrix, subject)
        if cfg.bigram_min_df > 0:
            self.bigrams = Bigrams(self.body_analyzer, cfg.bigram_min_df)
            matrix = _append_columns(matrix, self.bigrams.fit_transform(texts), len(self.bigrams))
        # Sorted, as `transform` gives them (scikit-learn's fit leaves first-seen order): the
        # first layer then gathers its rows in memory order, and epochs run ~25% faster.
        matrix.sort_indices()
        return matrix

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """scikit-learn's `transform` output (sorted indices), without its per-call cost."""
        import scipy.sparse as sp

        encoded = self.encode(texts)
        matrix = sp.csr_matrix(
            (encoded.data, encoded.indices.astype(np.int32), encoded.indptr.astype(np.int32)),
            shape=(encoded.n_rows, encoded.n_features),
        )
        matrix.sort_indices()
        return matrix

    def encode(self, texts: Sequence[str]) -> Encoded:
        """The TF-IDF rows as CSR arrays: what serving feeds torch, with no SciPy in between.

        scikit-learn validates and re-derives its state on every call (~0.2 ms per vectorizer),
        which would be most of the time for the one-text requests a service sees; `_Encoder` does
        the same counting, sublinear tf, idf and L2 steps on state prepared once."""
        if self._encoder is None:
            self._encoder = _Encoder(self)
        return self._encoder.encode(texts)

    def _fitted_body(self) -> Vocabulary:
        if self.body is None:
            raise RuntimeError("the features are not fitted yet: call fit() first")
        return self.body

    def _join(self, body: sp.csr_matrix, subject: sp.csr_matrix) -> sp.csr_matrix:
        import scipy.sparse as sp

        subject.data *= np.float32(self.config.subject_weight)
        return sp.hstack([body, subject], format="csr", dtype=np.float32)


class _Encoder:
    """Fitted state laid out for fast transforms: analyzers, term lookups, one idf vector."""

    def __init__(self, features: TextFeatures) -> None:
        body, subject = features._fitted_body(), features.subject
        self.split = len(body)  # first subject column
        self.n_features = features.n_features
        self.parts = [_Part(features.body_analyzer, body, 0)]
        # A subject weighted 0 adds only zeros: leaving the part out gives the same matrix.
        if subject is not None and features.config.subject_weight > 0:
            self.parts.append(_Part(features.subject_analyzer, subject, self.split))
        self.idf = np.concatenate([body.idf, subject.idf] if subject else [body.idf])
        self.sublinear = features.config.sublinear_tf
        self.subject_weight = np.float32(features.config.subject_weight)
        self.bigrams, self.n_word_features = features.bigrams, features.n_word_features

    def encode(self, texts: Sequence[str]) -> Encoded:
        # Counting as scikit-learn's CountVectorizer does, into one matrix for all parts (the
        # subject's columns are pre-shifted past the body's). `ends` marks where each segment
        # (one part of one row: row 0's body, row 0's subject, row 1's body, ...) ends.
        indices: list[int] = []
        counts: list[int] = []
        ends: list[int] = []
        body, *subject = self.parts
        for text in texts:
            body.count(text, indices, counts)
            ends.append(len(indices))
            if subject:
                subject[0].count(subject_line(text), indices, counts)
                ends.append(len(indices))
        # Via int64: numpy converts a list of ints to float32 slower than to int64 and a cast.
        data = np.fromiter(counts, np.int64, len(counts)).astype(np.float32)
        index = np.fromiter(indices, np.int64, len(indices))
        bounds = np.fromiter(itertools.chain((0,), ends), np.int64, len(ends) + 1)
        offsets = bounds[:: len(self.parts)]
        words = Encoded(offsets, index, self._weigh(index, data, np.diff(bounds)), self.n_features)
        if self.bigrams is None:
            return words
        indptr, columns, values = self.bigrams.transform(texts)
        return _append_to_rows(words, indptr, columns + self.n_word_features, values)

    def _weigh(self, indices: np.ndarray, data: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """scikit-learn's TfidfTransformer steps, in its order and dtypes, per segment of
        `sizes` entries; the subject's weight is applied by dividing by its norm over it."""
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        data *= self.idf[indices]
        segment = np.repeat(np.arange(len(sizes)), sizes)
        squares = np.square(data, dtype=np.float64)
        norms = np.sqrt(np.bincount(segment, weights=squares, minlength=len(sizes)))
        if len(self.parts) > 1:
            norms[1::2] /= self.subject_weight  # empty segments keep 0 and are never used
        data /= norms[segment]
        return data


class _Part:
    """One TF-IDF's analyzer and term -> column lookup (columns shifted by `offset`).

    A unigram analyzer's lookup is keyed by UTF-8 bytes, for `WordAnalyzer.raw_ascii_tokens`;
    an n-gram analyzer's by str."""

    def __init__(self, analyzer: WordAnalyzer, vocabulary: Vocabulary, offset: int) -> None:
        self.analyzer = analyzer
        self.fast = analyzer.unigrams_only
        key = _to_bytes if self.fast else str
        self.lookup: dict[Any, int] = {key(t): i + offset for i, t in enumerate(vocabulary.terms)}

    def count(self, text: str, indices: list[int], counts: list[int]) -> None:
        terms: Any = self.analyzer.raw_ascii_tokens(text) if self.fast else None
        if terms is None:
            terms = self.analyzer(text)
            if self.fast:
                terms = map(_to_bytes, terms)
        counter = Counter(map(self.lookup.get, terms))
        counter.pop(None, None)  # out-of-vocabulary terms
        indices.extend(counter.keys())  # type: ignore[arg-type]
        counts.extend(counter.values())


def _append_columns(
    matrix: sp.csr_matrix, block: tuple[np.ndarray, np.ndarray, np.ndarray], width: int
) -> sp.csr_matrix:
    """`matrix` with a CSR block (indptr, indices, data) of `width` columns to its right."""
    import scipy.sparse as sp

    indptr, indices, data = block
    right = sp.csr_matrix((data, indices, indptr), shape=(matrix.shape[0], width))
    return sp.hstack([matrix, right], format="csr", dtype=np.float32)


def _append_to_rows(
    encoded: Encoded, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray
) -> Encoded:
    """Each row of `encoded` followed by the same row of another CSR block (already shifted
    to its columns)."""
    rows = np.arange(encoded.n_rows)
    owner = np.concatenate(
        [np.repeat(rows, np.diff(encoded.indptr)), np.repeat(rows, np.diff(indptr))]
    )
    order = np.argsort(owner, kind="stable")  # a row's own entries first, the block's after
    return Encoded(
        encoded.indptr + indptr,
        np.concatenate([encoded.indices, indices])[order],
        np.concatenate([encoded.data, data])[order],
        encoded.n_features,
    )


def subject_line(text: str) -> str:
    """The `Subject:` line of a text's header block ('' when absent)."""
    end = text.find("\n\n")
    match = _SUBJECT.search(text, 0, end if end >= 0 else len(text))
    return match.group(1) if match else ""


def subject_offset(text: str) -> int:
    """Where `subject_line(text)` starts in `text` (-1 when there is none), for explanations'
    character offsets."""
    end = text.find("\n\n")
    match = _SUBJECT.search(text, 0, end if end >= 0 else len(text))
    return match.start(1) if match else -1


def subject_lines(texts: Sequence[str]) -> list[str]:
    return [subject_line(text) for text in texts]


def build_vectorizer(config: FeatureConfig) -> TextFeatures:
    """Unfitted features for `config`."""
    return TextFeatures(config)


def n_features(features: TextFeatures) -> int:
    return features.n_features


def vectorizer_state(features: TextFeatures, config: FeatureConfig | None = None) -> dict[str, Any]:
    """JSON-ready state; terms are listed in column order (smaller than a term->index map)."""
    return {
        "state_version": STATE_VERSION,
        "config": to_dict(config or features.config),
        **_state(features._fitted_body()),
        "subject": None if features.subject is None else _state(features.subject),
        "bigrams": None if features.bigrams is None else features.bigrams.state(),
    }


def vectorizer_from_state(state: dict[str, Any]) -> TextFeatures:
    """Rebuild fitted features; raises ValueError/KeyError/TypeError on malformed state."""
    if not isinstance(state, dict):
        raise ValueError("vectorizer state must be a JSON object")
    if state.get("state_version") != STATE_VERSION:
        raise ValueError(f"unsupported vectorizer state version {state.get('state_version')!r}")
    features = TextFeatures(feature_config_from_dict(state["config"]))
    features.body = _restore(state)
    subject = state.get("subject")
    if subject is not None:
        features.subject = _restore(subject)
    bigrams = state.get("bigrams")
    if bigrams is not None:
        features.bigrams = Bigrams(features.body_analyzer, features.config.bigram_min_df)
        features.bigrams.vocabulary = BigramVocabulary.from_state(bigrams)
    return features


def to_torch(batch: sp.spmatrix | Encoded, device: torch.device | str = "cpu") -> torch.Tensor:
    """A batch as a torch sparse CSR tensor (int64 indices, float32 values), on `device`."""
    import torch  # a lookup in sys.modules once the model has loaded torch

    if isinstance(batch, Encoded):
        parts, shape = (batch.indptr, batch.indices, batch.data), (batch.n_rows, batch.n_features)
    else:
        csr = batch.tocsr()
        parts, shape = (csr.indptr, csr.indices, csr.data), csr.shape
    indptr, indices, data = parts
    tensor = torch.sparse_csr_tensor(
        torch.from_numpy(indptr.astype(np.int64, copy=False)),
        torch.from_numpy(indices.astype(np.int64, copy=False)),
        torch.from_numpy(data.astype(np.float32, copy=False)),
        size=shape,
        check_invariants=False,
    )
    return tensor if str(device) == "cpu" else tensor.to(device, non_blocking=True)


def _tfidf(
    config: FeatureConfig,
    analyzer: WordAnalyzer,
    min_df: int | float,
    max_df: float,
    max_features: int | None,
) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # float32 output halves memory and matches the model's dtype.
    return TfidfVectorizer(
        analyzer=analyzer,
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        sublinear_tf=config.sublinear_tf,
        dtype=np.float32,
    )


def _vocabulary(vectorizer: Any) -> Vocabulary:
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    terms = [""] * len(vocabulary)
    for term, index in vocabulary.items():
        terms[index] = term
    return Vocabulary(terms, np.asarray(vectorizer.idf_, dtype=np.float64))


def _state(vocabulary: Vocabulary) -> dict[str, Any]:
    return {"terms": list(vocabulary.terms), "idf": [float(v) for v in vocabulary.idf]}


def _restore(state: dict[str, Any]) -> Vocabulary:
    terms = state["terms"]
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValueError("'terms' must be a list of strings")
    idf = np.asarray(state["idf"], dtype=np.float64)
    if idf.ndim != 1 or len(terms) != len(idf):
        raise ValueError(f"{len(terms)} terms but {idf.size} idf values")
    if len(set(terms)) != len(terms):
        raise ValueError("duplicate terms in the vocabulary")
    if not np.all(np.isfinite(idf)):
        raise ValueError("idf values must be finite numbers")
    return Vocabulary(terms, idf)
