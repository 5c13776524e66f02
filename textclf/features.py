"""TF-IDF features: build the vectorizer, save/restore its state as JSON, hand batches to torch.

The vectorizer is scikit-learn's own `TfidfVectorizer`, so tokenisation and weighting are exactly
what users of scikit-learn know. Its learned state (vocabulary, idf) is written as plain JSON, never
pickled, and rebuilt into a vectorizer whose output is bit-identical to the trained one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from textclf.config import FeatureConfig, feature_config_from_dict, to_dict

STATE_VERSION = 1


def build_vectorizer(config: FeatureConfig) -> TfidfVectorizer:
    """An unfitted vectorizer; float32 output halves memory and matches the model's dtype."""
    return TfidfVectorizer(
        ngram_range=config.ngram_range,
        min_df=config.min_df,
        max_df=config.max_df,
        max_features=config.max_features,
        sublinear_tf=config.sublinear_tf,
        lowercase=config.lowercase,
        stop_words=config.stop_words,
        dtype=np.float32,
    )


def vectorizer_state(vectorizer: TfidfVectorizer, config: FeatureConfig) -> dict[str, Any]:
    """JSON-ready state: terms listed in column order (smaller than a term->index map)."""
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    terms = [""] * len(vocabulary)
    for term, index in vocabulary.items():
        terms[index] = term
    return {
        "state_version": STATE_VERSION,
        "config": to_dict(config),
        "terms": terms,
        "idf": [float(v) for v in vectorizer.idf_],
    }


def vectorizer_from_state(state: dict[str, Any]) -> TfidfVectorizer:
    """Rebuild a fitted vectorizer; raises ValueError/KeyError on malformed state."""
    if state.get("state_version") != STATE_VERSION:
        raise ValueError(f"unsupported vectorizer state version {state.get('state_version')!r}")
    config = feature_config_from_dict(state["config"])
    terms: list[str] = state["terms"]
    idf = np.asarray(state["idf"], dtype=np.float64)
    if len(terms) != len(idf):
        raise ValueError(f"{len(terms)} terms but {len(idf)} idf values")
    if len(set(terms)) != len(terms):
        raise ValueError("duplicate terms in the vocabulary")
    vectorizer = build_vectorizer(config)
    vectorizer.vocabulary_ = {term: i for i, term in enumerate(terms)}
    vectorizer.idf_ = idf
    vectorizer.fixed_vocabulary_ = False
    return vectorizer


def n_features(vectorizer: TfidfVectorizer) -> int:
    return len(vectorizer.vocabulary_)


def to_torch(batch: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A CSR batch as a torch sparse CSR tensor (int64 indices, float32 values), on `device`."""
    batch = batch.tocsr()
    tensor = torch.sparse_csr_tensor(
        torch.from_numpy(batch.indptr.astype(np.int64, copy=False)),
        torch.from_numpy(batch.indices.astype(np.int64, copy=False)),
        torch.from_numpy(batch.data.astype(np.float32, copy=False)),
        size=batch.shape,
    )
    return tensor.to(device, non_blocking=True) if str(device) != "cpu" else tensor


def batches(
    matrix: sp.csr_matrix, order: Iterable[int] | np.ndarray, size: int
) -> Iterable[tuple[np.ndarray, sp.csr_matrix]]:
    """Row batches of a CSR matrix in the given order (indices, rows)."""
    order = np.asarray(order if isinstance(order, np.ndarray) else list(order))
    for start in range(0, len(order), size):
        index = order[start : start + size]
        yield index, matrix[index]
