"""TF-IDF features: the JSON state must rebuild a vectorizer whose output is bit-identical."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from textclf.config import (
    TUTORIAL_CATEGORIES,
    DataConfig,
    FeatureConfig,
    feature_config_from_dict,
    to_dict,
)
from textclf.data import Splits, load_splits
from textclf.errors import ConfigError
from textclf.features import (
    STATE_VERSION,
    build_vectorizer,
    n_features,
    subject_lines,
    to_torch,
    vectorizer_from_state,
    vectorizer_state,
)

# Whatever `build_vectorizer` returns: only the module's functions are used on it.
Features = Any

CONFIG = FeatureConfig(ngram_range=(1, 2), max_features=20_000)

ODD_TEXTS = [
    "",
    "   \t\n  ",
    "The shuttle launch was delayed by weather",
    "THE SHUTTLE LAUNCH WAS DELAYED BY WEATHER",
    "🚀🚀 launch 🌍 orbit ✨",
    "naïve café résumé Ångström",
    "ロケットの打ち上げ 火箭发射",
    "الإطلاق تأجل بسبب الطقس שיגור",
    "nul\x00byte and \x07 bell \x1b[31m escape",
    "zzqxjv wwkpfq unknownword",
    "space " * 2_000,
    "pitcher, catcher; inning! (home-run) 3.14 1993 e-mail@x.org",
    "From: someone@nasa.gov\nSubject: Re: shuttle launch delayed\n\nThe pitcher threw a curve.",
    "Subject: \n\nan empty subject line",
    "subject: lower-case header\nLines: 3\n\nbody text only",
    "no header at all\n\nSubject: this line is in the body, not a header",
]


@pytest.fixture(scope="module")
def splits(archive: Path) -> Splits:
    return load_splits(DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES))


@pytest.fixture(scope="module")
def fitted(splits: Splits) -> Features:
    return build_vectorizer(CONFIG).fit(splits.train.texts)


def _json_round_trip(vectorizer: Features, config: FeatureConfig) -> Features:
    text = json.dumps(vectorizer_state(vectorizer, config), ensure_ascii=False)
    return vectorizer_from_state(json.loads(text))


def _assert_identical(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    assert a.shape == b.shape
    assert a.dtype == b.dtype == np.float32
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)  # bit-identical, not merely close


def test_round_trip_is_bit_identical_on_20_newsgroups(fitted: Features, splits: Splits) -> None:
    assert splits.test is not None
    restored = _json_round_trip(fitted, CONFIG)
    texts = splits.val.texts + splits.test.texts[:300]
    _assert_identical(fitted.transform(texts), restored.transform(texts))


def test_round_trip_is_bit_identical_on_odd_texts(fitted: Features) -> None:
    restored = _json_round_trip(fitted, CONFIG)
    _assert_identical(fitted.transform(ODD_TEXTS), restored.transform(ODD_TEXTS))
    for text in ODD_TEXTS:  # one at a time too: a batch must not change a row
        _assert_identical(fitted.transform([text]), restored.transform([text]))


def test_round_trip_keeps_vocabulary_idf_and_settings(fitted: Features) -> None:
    state = vectorizer_state(fitted, CONFIG)
    assert state["state_version"] == STATE_VERSION
    assert len(state["terms"]) == len(state["idf"]) <= 20_000  # the body's vocabulary
    assert len(state["terms"]) <= n_features(fitted)
    restored = _json_round_trip(fitted, CONFIG)
    assert n_features(restored) == n_features(fitted)
    assert vectorizer_state(restored, CONFIG) == state  # same terms, same order, same idf
    assert feature_config_from_dict(state["config"]) == CONFIG


def test_round_trip_with_non_default_settings(splits: Splits) -> None:
    config = FeatureConfig(
        ngram_range=(1, 3),
        min_df=0.001,
        max_df=0.9,
        max_features=None,
        sublinear_tf=False,
        lowercase=False,
        stop_words="english",
    )
    texts = splits.train.texts[:400]
    fitted = build_vectorizer(config).fit(texts)
    restored = _json_round_trip(fitted, config)
    _assert_identical(fitted.transform(texts + ODD_TEXTS), restored.transform(texts + ODD_TEXTS))


def test_unknown_words_give_an_empty_row(fitted: Features) -> None:
    row = _json_round_trip(fitted, CONFIG).transform(["zzqxjv wwkpfq", ""])
    assert row.shape == (2, n_features(fitted))
    assert row.nnz == 0


def _state(**changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "state_version": STATE_VERSION,
        "config": to_dict(FeatureConfig(ngram_range=(1, 1))),
        "terms": ["launch", "orbit", "pitcher"],
        "idf": [1.5, 2.0, 2.5],
    }
    state.update(changes)
    return state


def test_a_hand_written_state_loads() -> None:
    vectorizer = vectorizer_from_state(_state())
    x = vectorizer.transform(["launch orbit orbit", "pitcher"])
    assert x.shape == (2, 3)
    assert x[1, 2] == pytest.approx(1.0)  # one term, l2-normalised


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_state_rejects_other_versions(version: object) -> None:
    with pytest.raises(ValueError, match="unsupported vectorizer state version"):
        vectorizer_from_state(_state(state_version=version))


def test_state_rejects_a_missing_version() -> None:
    state = _state()
    del state["state_version"]
    with pytest.raises(ValueError, match="unsupported vectorizer state version"):
        vectorizer_from_state(state)


def test_state_rejects_duplicate_terms() -> None:
    with pytest.raises(ValueError, match="duplicate terms"):
        vectorizer_from_state(_state(terms=["launch", "orbit", "launch"]))


@pytest.mark.parametrize("idf", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
def test_state_rejects_length_mismatch(idf: list[float]) -> None:
    with pytest.raises(ValueError, match=f"3 terms but {len(idf)} idf values"):
        vectorizer_from_state(_state(idf=idf))


@pytest.mark.parametrize("key", ["config", "terms", "idf"])
def test_state_rejects_missing_keys(key: str) -> None:
    state = _state()
    del state[key]
    with pytest.raises(KeyError):
        vectorizer_from_state(state)


def test_to_torch_matches_the_scipy_matrix(fitted: Features, splits: Splits) -> None:
    batch = fitted.transform(splits.val.texts[:16] + ODD_TEXTS)
    tensor = to_torch(batch)
    assert tensor.layout == torch.sparse_csr
    assert tensor.dtype == torch.float32
    assert tensor.crow_indices().dtype == tensor.col_indices().dtype == torch.int64
    assert tuple(tensor.shape) == batch.shape
    assert np.array_equal(tensor.to_dense().numpy(), batch.toarray())


def test_to_torch_accepts_other_sparse_formats_and_dtypes() -> None:
    dense = np.array([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, -0.25]])
    for matrix in (sp.coo_matrix(dense), sp.csc_matrix(dense.astype(np.float64))):
        tensor = to_torch(matrix)
        assert tensor.dtype == torch.float32
        assert np.array_equal(tensor.to_dense().numpy(), dense.astype(np.float32))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ngram_range": (2, 1)}, "ngram_range"),
        ({"ngram_range": (0, 1)}, "ngram_range"),
        ({"stop_words": "french"}, "stop_words"),
        ({"bigram_min_df": -1}, "bigram_min_df"),
    ],
)
def test_feature_config_rejects_bad_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureConfig(**changes)


def test_feature_config_round_trips_through_a_dict() -> None:
    config = FeatureConfig(ngram_range=(1, 3), min_df=0.01, stop_words="english")
    raw = json.loads(json.dumps(to_dict(config)))
    assert raw["ngram_range"] == [1, 3]
    assert feature_config_from_dict(raw) == config


def _scikit_learn(config: FeatureConfig, ngram_range: tuple[int, int], **df: Any) -> Any:
    """scikit-learn's own vectorizer with its own word analyzer: the reference."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    options = {"dtype": np.float32, **df}
    return TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=config.sublinear_tf, **options)


@pytest.mark.parametrize("subject_weight", [0.0, 0.5])
def test_features_equal_scikit_learns_own(splits: Splits, subject_weight: float) -> None:
    """Our analyzer and fast transform stand in for scikit-learn's: same vocabulary, same idf,
    same rows, for fitting and for transforming."""
    config = FeatureConfig(ngram_range=(1, 2), max_features=20_000, subject_weight=subject_weight)
    features = build_vectorizer(config)
    train = splits.train.texts
    trained = features.fit_transform(train)
    body = _scikit_learn(config, config.ngram_range, min_df=2, max_df=0.5, max_features=20_000)
    references = [(features.body, body, train, lambda t: t)]
    if subject_weight:
        subject = _scikit_learn(config, config.subject_ngram_range)
        references.append((features.subject, subject, train, subject_lines))
    assert features.bigrams is not None and features.bigrams.vocabulary is not None
    pairs = _scikit_learn(config, (2, 2), min_df=config.bigram_min_df, dtype=np.float64)
    references.append((features.bigrams.vocabulary, pairs, train, lambda t: t))
    texts = splits.test.texts + ODD_TEXTS
    expected_fit, expected = [], []
    for ours, theirs, fit_texts, view in references:
        expected_fit.append(theirs.fit_transform(view(fit_texts)))
        assert ours.terms == list(theirs.get_feature_names_out())
        np.testing.assert_allclose(ours.idf, theirs.idf_, rtol=1e-15)
        expected.append(theirs.transform(view(texts)))
    for parts, ours in ((expected_fit, trained), (expected, features.transform(texts))):
        if subject_weight:
            parts[1].data *= np.float32(subject_weight)
        reference = sp.csr_matrix(sp.hstack(parts, format="csr", dtype=np.float32))
        reference.sort_indices()
        ours = sp.csr_matrix(ours)
        ours.sort_indices()
        assert ours.shape == reference.shape
        assert np.array_equal(ours.indptr, reference.indptr)
        assert np.array_equal(ours.indices, reference.indices)
        np.testing.assert_allclose(ours.data, reference.data, rtol=2e-7, atol=0)


def test_encode_is_transform_without_scipy(fitted: Features, splits: Splits) -> None:
    texts = splits.val.texts[:50] + ODD_TEXTS
    encoded = fitted.encode(texts)
    assert encoded.indptr.dtype == encoded.indices.dtype == np.int64
    assert encoded.data.dtype == np.float32
    matrix = sp.csr_matrix(
        (encoded.data, encoded.indices, encoded.indptr), shape=(len(texts), n_features(fitted))
    )
    assert np.array_equal(matrix.toarray(), fitted.transform(texts).toarray())
    assert np.array_equal(to_torch(encoded).to_dense().numpy(), matrix.toarray())


def test_serving_imports_neither_scikit_learn_nor_scipy(tmp_path: Path, fitted: Features) -> None:
    """A restored vectorizer transforms without them (they cost ~0.8 s of a cold start)."""
    import subprocess
    import sys

    state = tmp_path / "state.json"
    state.write_text(json.dumps(vectorizer_state(fitted, CONFIG)))
    code = (
        "import json, sys; from textclf.features import vectorizer_from_state as load; "
        f"load(json.load(open({str(state)!r}))).encode(['the launch']); "
        "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the word-pair columns ---------------------------------------------------------------------


def test_word_pairs_come_last_and_can_be_dropped(fitted: Features, splits: Splits) -> None:
    texts = splits.test.texts[:50] + ODD_TEXTS
    vectorizer = _json_round_trip(fitted, CONFIG)
    words, pairs = vectorizer.n_word_features, vectorizer.n_bigrams
    assert pairs > 0 and vectorizer.n_features == words + pairs
    everything = vectorizer.transform(texts)
    with pytest.raises(ValueError, match="fits neither"):
        vectorizer.keep_columns(words + 1)
    vectorizer.keep_columns(vectorizer.n_features)  # the model reads them all: nothing changes
    assert vectorizer.n_bigrams == pairs
    vectorizer.keep_columns(words)
    assert vectorizer.n_bigrams == 0 and vectorizer.n_features == words
    _assert_identical(vectorizer.transform(texts), everything[:, :words])
    assert vectorizer_state(vectorizer, CONFIG)["bigrams"] is None


def test_no_word_pairs_when_turned_off(splits: Splits) -> None:
    config = FeatureConfig(ngram_range=(1, 1), max_features=5_000, bigram_min_df=0)
    vectorizer = build_vectorizer(config)
    x = vectorizer.fit_transform(splits.train.texts[:300])
    assert vectorizer.n_bigrams == 0 and x.shape[1] == vectorizer.n_word_features
    assert vectorizer_state(vectorizer, config)["bigrams"] is None


def test_a_hand_written_state_with_word_pairs_loads() -> None:
    state = _state(bigrams={"words": ["launch", "orbit"], "pairs": [[0, 1]], "idf": [2.0]})
    vectorizer = vectorizer_from_state(state)
    x = vectorizer.transform(["launch orbit orbit", "orbit launch"])
    assert x.shape == (2, 4)
    assert x[0, 3] == pytest.approx(1.0) and x[1, 3] == 0  # the pair, in its order only
    with pytest.raises(ValueError, match="unknown words"):
        vectorizer_from_state(_state(bigrams={"words": ["a"], "pairs": [[0, 1]], "idf": [1.0]}))


def test_fitted_rows_come_with_sorted_columns(fitted: Features, splits: Splits) -> None:
    """As `transform` gives them; training's row gathers rely on it for speed."""
    x = build_vectorizer(CONFIG).fit_transform(splits.train.texts[:300])
    for row in range(x.shape[0]):
        columns = x.indices[x.indptr[row] : x.indptr[row + 1]]
        assert np.all(np.diff(columns) > 0)
