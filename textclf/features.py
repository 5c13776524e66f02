"""TF-IDF features: fit, transform, save/restore as JSON, hand batches to torch.

The vectorizers are scikit-learn's own `TfidfVectorizer`, so tokenisation and weighting are what
users of scikit-learn know. A model's input columns are the body's TF-IDF, optionally followed by a
second, weighted TF-IDF of the `Subject:` header line (see `FeatureConfig.subject_weight`). The
learned state (vocabularies, idf) is written as plain JSON, never pickled, and rebuilt into
features whose output is bit-identical to the trained ones.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from textclf.config import FeatureConfig, feature_config_from_dict, to_dict

STATE_VERSION = 1
# torch flags all sparse CSR use as "beta" on every call; the ops used here are long stable.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
_SUBJECT = re.compile(r"^subject:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


class TextFeatures:
    """Texts -> CSR float32 rows: body TF-IDF [+ subject_weight * subject TF-IDF]."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self.body = _tfidf(
            config, config.ngram_range, config.min_df, config.max_df, config.max_features
        )
        self.subject: TfidfVectorizer | None = None
        self._encoder: _Encoder | None = None

    @property
    def n_features(self) -> int:
        return len(self.body.vocabulary_) + (
            len(self.subject.vocabulary_) if self.subject is not None else 0
        )

    def fit(self, texts: Sequence[str]) -> TextFeatures:
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        body = self.body.fit_transform(texts)
        self.subject, self._encoder = None, None
        if self.config.subject_weight > 0:
            subjects = subject_lines(texts)
            if any(subjects):
                cfg = self.config
                self.subject = _tfidf(cfg, cfg.subject_ngram_range, 1, 1.0, None)
                return self._join(body, self.subject.fit_transform(subjects))
        return body

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Same output as scikit-learn's `transform` (bit for bit), without its per-call cost.

        scikit-learn validates and re-derives its state on every call (~0.2 ms per vectorizer),
        which is most of the time for the one-text requests a service sees. `_Encoder` does the
        same counting, sublinear tf, idf and L2 steps on state prepared once.
        """
        if self._encoder is None:
            self._encoder = _Encoder(self)
        return self._encoder.transform(texts)

    def _join(self, body: sp.csr_matrix, subject: sp.csr_matrix) -> sp.csr_matrix:
        subject.data *= np.float32(self.config.subject_weight)
        return sp.hstack([body, subject], format="csr", dtype=np.float32)


class _Encoder:
    """Fitted state laid out for fast transforms: analyzers, vocabularies, one idf vector."""

    def __init__(self, features: TextFeatures) -> None:
        parts = [features.body, *([features.subject] if features.subject is not None else [])]
        self.analyzers = [v.build_analyzer() for v in parts]
        sizes = [len(v.vocabulary_) for v in parts]
        self.n_features = sum(sizes)
        self.split = sizes[0]  # first subject column
        self.vocabularies: list[dict[str, int]] = [parts[0].vocabulary_]
        if len(parts) > 1:
            self.vocabularies.append({t: i + self.split for t, i in parts[1].vocabulary_.items()})
        self.idf = np.concatenate([v.idf_ for v in parts])
        self.sublinear = features.config.sublinear_tf
        self.subject_weight = np.float32(features.config.subject_weight)
        self.has_subject = features.subject is not None

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        # Counting as scikit-learn's CountVectorizer does, into one matrix for all parts (the
        # subject's vocabulary is pre-shifted past the body's columns), then one index sort.
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        views = (texts, subject_lines(texts)) if self.has_subject else (texts,)
        for row in zip(*views, strict=True):
            for analyze, vocabulary, text in zip(
                self.analyzers, self.vocabularies, row, strict=True
            ):
                counter = Counter(map(vocabulary.get, analyze(text)))
                counter.pop(None, None)  # out-of-vocabulary terms
                indices.extend(counter.keys())  # type: ignore[arg-type]
                counts.extend(counter.values())
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (
                np.asarray(counts, dtype=np.float32),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int32),
            ),
            shape=(len(indptr) - 1, self.n_features),
        )
        matrix.sort_indices()
        return self._weigh(matrix)

    def _weigh(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """scikit-learn's TfidfTransformer steps, in its order and dtypes, per part."""
        data = matrix.data
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        data *= self.idf[matrix.indices]
        subject = matrix.indices >= self.split
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)) * 2 + subject
        norms = np.sqrt(
            np.bincount(rows, weights=data.astype(np.float64) ** 2, minlength=2 * matrix.shape[0])
        )
        norms[norms == 0.0] = 1.0
        data /= norms[rows]
        if self.has_subject:
            data[subject] *= self.subject_weight
        return matrix


def subject_lines(texts: Sequence[str]) -> list[str]:
    """The `Subject:` line of each text's header block ('' when absent)."""
    out = []
    for text in texts:
        end = text.find("\n\n")
        match = _SUBJECT.search(text, 0, end if end >= 0 else len(text))
        out.append(match.group(1) if match else "")
    return out


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
        **_tfidf_state(features.body),
        "subject": None if features.subject is None else _tfidf_state(features.subject),
    }


def vectorizer_from_state(state: dict[str, Any]) -> TextFeatures:
    """Rebuild fitted features; raises ValueError/KeyError/TypeError on malformed state."""
    if not isinstance(state, dict):
        raise ValueError("vectorizer state must be a JSON object")
    if state.get("state_version") != STATE_VERSION:
        raise ValueError(f"unsupported vectorizer state version {state.get('state_version')!r}")
    features = TextFeatures(feature_config_from_dict(state["config"]))
    _restore(features.body, state)
    subject = state.get("subject")
    if subject is not None:
        cfg = features.config
        features.subject = _restore(_tfidf(cfg, cfg.subject_ngram_range, 1, 1.0, None), subject)
    return features


def to_torch(batch: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A CSR batch as a torch sparse CSR tensor (int64 indices, float32 values), on `device`."""
    batch = batch.tocsr()
    tensor = torch.sparse_csr_tensor(
        torch.from_numpy(batch.indptr.astype(np.int64, copy=False)),
        torch.from_numpy(batch.indices.astype(np.int64, copy=False)),
        torch.from_numpy(batch.data.astype(np.float32, copy=False)),
        size=batch.shape,
        check_invariants=False,
    )
    return tensor if str(device) == "cpu" else tensor.to(device, non_blocking=True)


def _tfidf(
    config: FeatureConfig,
    ngram_range: tuple[int, int],
    min_df: int | float,
    max_df: float,
    max_features: int | None,
) -> TfidfVectorizer:
    # float32 output halves memory and matches the model's dtype.
    return TfidfVectorizer(
        ngram_range=ngram_range,
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        sublinear_tf=config.sublinear_tf,
        lowercase=config.lowercase,
        stop_words=config.stop_words,
        dtype=np.float32,
    )


def _tfidf_state(vectorizer: TfidfVectorizer) -> dict[str, Any]:
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    terms = [""] * len(vocabulary)
    for term, index in vocabulary.items():
        terms[index] = term
    return {"terms": terms, "idf": [float(v) for v in vectorizer.idf_]}


def _restore(vectorizer: TfidfVectorizer, state: dict[str, Any]) -> TfidfVectorizer:
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
    vectorizer.vocabulary_ = {term: i for i, term in enumerate(terms)}
    vectorizer.idf_ = idf
    vectorizer.fixed_vocabulary_ = False
    return vectorizer
