"""The predictor as users call it: `textclf.load(dir).predict(...)`, on any text at all."""

from __future__ import annotations

import gc
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import textclf
from textclf import LabelScore, ModelInfo, ModelRef, Prediction, Predictor
from textclf.config import TUTORIAL_CATEGORIES
from textclf.predictor import BATCH_SIZE, gc_paused

SPACE = "NASA plans another orbit of the moon with the space station"
BASEBALL = "The pitcher threw a curveball and the Yankees won the game in the ninth inning"
GRAPHICS = "How do I render 3D polygons with OpenGL and convert GIF images to JPEG?"
EXPECTED = {SPACE: "sci.space", BASEBALL: "rec.sport.baseball", GRAPHICS: "comp.graphics"}
LABELS = tuple(sorted(TUTORIAL_CATEGORIES))


def _assert_distribution(probs: np.ndarray, rows: int) -> None:
    assert probs.shape == (rows, len(LABELS))
    assert probs.dtype == np.float32
    assert np.isfinite(probs).all()
    assert (probs >= 0).all() and (probs <= 1).all()
    assert np.allclose(probs.sum(axis=1, dtype=np.float64), 1.0, atol=1e-5)


def _assert_valid_prediction(prediction: Prediction, top_k: int = 1) -> None:
    assert isinstance(prediction, Prediction)
    Prediction.model_validate(prediction.model_dump())  # built unchecked; must still be valid
    assert len(prediction.top_k) == min(top_k, len(LABELS))
    assert prediction.label == prediction.top_k[0].label
    assert prediction.score == prediction.top_k[0].score
    scores = [s.score for s in prediction.top_k]
    assert scores == sorted(scores, reverse=True)
    assert len({s.label for s in prediction.top_k}) == len(prediction.top_k)
    assert {s.label for s in prediction.top_k} <= set(LABELS)


def _assert_same_predictions(predictor: Predictor, texts: list[str]) -> None:
    """A batch scores each text as it would alone (to float rounding) and keeps the order."""
    batch = predictor.predict_proba(texts)
    for row, text in zip(batch, texts, strict=True):
        alone = predictor.predict_proba([text])[0]
        assert np.allclose(row, alone, atol=1e-6)
        top2 = np.sort(alone)[-2:]
        if top2[1] - top2[0] > 1e-5:  # a near-tie may flip on rounding alone
            assert row.argmax() == alone.argmax()
    predictions = predictor.predict(texts)
    assert [p.label for p in predictions] == [LABELS[i] for i in batch.argmax(1)]


# --- the API ------------------------------------------------------------------------------------


def test_load_returns_a_predictor(predictor: Predictor) -> None:
    assert isinstance(predictor, Predictor)
    assert predictor.labels == LABELS
    assert str(predictor.device) == "cpu"


def test_predict_on_a_string_returns_one_prediction(predictor: Predictor) -> None:
    prediction = predictor.predict(SPACE)
    _assert_valid_prediction(prediction)
    assert prediction.label == "sci.space"


def test_predict_on_a_list_returns_a_list_in_order(predictor: Predictor) -> None:
    texts = [BASEBALL, SPACE, GRAPHICS, SPACE, BASEBALL]
    predictions = predictor.predict(texts)
    assert isinstance(predictions, list)
    assert [p.label for p in predictions] == [EXPECTED[t] for t in texts]
    for prediction in predictions:
        _assert_valid_prediction(prediction)


def test_predict_accepts_any_sequence(predictor: Predictor) -> None:
    as_list = predictor.predict([SPACE, BASEBALL])
    assert predictor.predict((SPACE, BASEBALL)) == as_list
    assert predictor.predict([SPACE]) == [predictor.predict(SPACE)]


def test_predict_on_an_empty_list(predictor: Predictor) -> None:
    assert predictor.predict([]) == []
    assert predictor.predict_proba([]).shape == (0, len(LABELS))


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_top_k_is_ordered_best_first(predictor: Predictor, top_k: int) -> None:
    prediction = predictor.predict(GRAPHICS, top_k=top_k)
    _assert_valid_prediction(prediction, top_k)
    probs = predictor.predict_proba([GRAPHICS])[0]
    expected = [LABELS[i] for i in np.argsort(-probs, kind="stable")[:top_k]]
    assert [s.label for s in prediction.top_k] == expected
    assert [s.score for s in prediction.top_k] == [float(probs[LABELS.index(x)]) for x in expected]


@pytest.mark.parametrize("top_k", [4, 20, 10_000])
def test_top_k_beyond_the_labels_is_clamped(predictor: Predictor, top_k: int) -> None:
    prediction = predictor.predict(BASEBALL, top_k=top_k)
    assert len(prediction.top_k) == len(LABELS)
    assert {s.label for s in prediction.top_k} == set(LABELS)
    assert sum(s.score for s in prediction.top_k) == pytest.approx(1.0, abs=1e-5)


def test_predict_proba_columns_follow_labels(predictor: Predictor) -> None:
    texts = [SPACE, BASEBALL, GRAPHICS]
    probs = predictor.predict_proba(texts)
    _assert_distribution(probs, 3)
    assert [LABELS[i] for i in probs.argmax(1)] == [EXPECTED[t] for t in texts]
    for text, row in zip(texts, probs, strict=True):
        top = predictor.predict(text, top_k=3).top_k
        # One text alone vs. three together: equal up to float rounding in the batched matmul.
        assert {s.label: s.score for s in top} == pytest.approx(
            {label: float(p) for label, p in zip(LABELS, row, strict=True)}, abs=1e-6
        )


@pytest.mark.parametrize("top_k", [0, -1, -100])
def test_top_k_below_one_is_a_value_error(predictor: Predictor, top_k: int) -> None:
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        predictor.predict(SPACE, top_k=top_k)
    with pytest.raises(ValueError):
        predictor.predict([SPACE], top_k=top_k)


@pytest.mark.parametrize("item", [1, None, b"bytes", 3.5, ["nested"], {"text": "x"}])
def test_items_that_are_not_strings_are_a_type_error(predictor: Predictor, item: object) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\] is"):
        predictor.predict([SPACE, item])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        predictor.predict_proba([item])  # type: ignore[list-item]


def test_predict_proba_refuses_a_bare_string(predictor: Predictor) -> None:
    # A string is a sequence of characters: scoring each one would be a silent mistake.
    with pytest.raises(TypeError, match="single string"):
        predictor.predict_proba(SPACE)


def test_batches_larger_than_batch_size(predictor: Predictor) -> None:
    cycle = [SPACE, BASEBALL, GRAPHICS, "", "unknownword"]
    texts = [f"{cycle[i % len(cycle)]} {i}" for i in range(2 * BATCH_SIZE + 7)]
    probs = predictor.predict_proba(texts)
    _assert_distribution(probs, len(texts))
    # Each BATCH_SIZE chunk is scored exactly as it would be on its own.
    for start in range(0, len(texts), BATCH_SIZE):
        chunk = texts[start : start + BATCH_SIZE]
        assert np.array_equal(probs[start : start + len(chunk)], predictor.predict_proba(chunk))
    predictions = predictor.predict(texts, top_k=2)
    assert len(predictions) == len(texts)
    assert [p.label for p in predictions[:3]] == [
        "sci.space",
        "rec.sport.baseball",
        "comp.graphics",
    ]
    assert [p.label for p in predictions] == [LABELS[i] for i in probs.argmax(1)]


def test_threads_share_one_predictor(predictor: Predictor) -> None:
    texts = [SPACE, BASEBALL, GRAPHICS] * 20
    expected = [p.label for p in predictor.predict(texts)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: predictor.predict(t).label, texts))
    assert results == expected


def test_ref_identifies_the_model(predictor: Predictor, trained_model_dir: Path) -> None:
    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    assert predictor.ref == ModelRef(name="test-model", version=manifest["version"])


def test_info_describes_the_model(predictor: Predictor, trained_model_dir: Path) -> None:
    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    info = predictor.info
    assert isinstance(info, ModelInfo)
    assert info.name == "test-model"
    assert info.version == manifest["version"] == predictor.ref.version
    assert info.format_version == 3
    assert info.labels == list(LABELS)
    assert info.created_at == datetime.fromisoformat(manifest["created_at"])
    assert set(info.metrics) == {"validation", "test"}
    assert info.metrics["test"]["accuracy"] >= 0.85
    assert info.training_config == manifest["training_config"]
    assert info.data == manifest["data"]
    assert ModelInfo.model_validate_json(info.model_dump_json()) == info


def test_wire_types_are_exported() -> None:
    assert LabelScore(label="a", score=0.5).score == 0.5
    with pytest.raises(ValueError):
        LabelScore(label="a", score=1.5)


def test_load_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not a model\n")
    with pytest.raises(textclf.ArtifactError, match=r"manifest\.json") as info:
        textclf.load(tmp_path)
    assert isinstance(info.value, textclf.TextclfError)


def test_load_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(textclf.ArtifactError, match="no such model folder"):
        textclf.load(tmp_path / "missing")


# --- any text -----------------------------------------------------------------------------------

ODD = [
    "",
    " ",
    "\n\n\t  \r\n",
    "\x00",
    "text\x00with\x00nuls",
    "\x1b[31mred\x1b[0m \x07\x08\x7f",
    "🚀🛰️🌕⚾🎨",
    "👩‍👩‍👧‍👦 family emoji with joiners",
    "שיגור המעבורת נדחה בגלל מזג האוויר",
    "تأجل إطلاق المكوك بسبب الطقس",
    "\u202eRTL override\u202c mixed ltr",
    "zzqxjv wwkpfq plmokn",
    "\ufeffBOM at the start",
    "\udcff lone surrogate",
    "ℌ𝔢𝔩𝔩𝔬 𝕨𝕠𝕣𝕝𝕕 ﬁ ligature",  # noqa: RUF001 - look-alike letters on purpose
    "a" * 10_000,
]

_ANY = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200)
_WORDS = st.sampled_from(
    ["space", "orbit", "nasa", "pitcher", "inning", "graphics", "polygon", "the", "of", "xyzzy"]
)
TEXT = st.one_of(
    _ANY,
    st.text(max_size=50),
    st.text(alphabet=st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp")), max_size=50),
    st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), max_size=50),
    st.lists(_WORDS, max_size=30).map(" ".join),
    st.sampled_from(ODD),
)


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
def test_odd_texts_give_a_distribution(predictor: Predictor, text: str) -> None:
    _assert_distribution(predictor.predict_proba([text]), 1)
    _assert_valid_prediction(predictor.predict(text, top_k=3), 3)


def test_odd_texts_together_keep_their_order(predictor: Predictor) -> None:
    _assert_same_predictions(predictor, [*ODD, SPACE, BASEBALL, GRAPHICS])


def test_a_one_megabyte_text(predictor: Predictor) -> None:
    text = ("The shuttle reached orbit and docked with the space station. " * 17_000)[:1_000_000]
    assert len(text.encode()) == 1_000_000
    probs = predictor.predict_proba([text, SPACE])
    _assert_distribution(probs, 2)
    assert predictor.predict(text).label == "sci.space"


def test_texts_with_no_known_word_get_the_same_scores(predictor: Predictor) -> None:
    probs = predictor.predict_proba(["", "   ", "zzqxjv wwkpfq", "\x00\x01", "🚀"])
    _assert_distribution(probs, 5)
    assert np.array_equal(probs, np.repeat(probs[:1], 5, axis=0))  # nothing to tell them apart


@settings(max_examples=100, deadline=None)
@given(text=TEXT)
def test_any_text_gives_a_probability_distribution(predictor: Predictor, text: str) -> None:
    _assert_distribution(predictor.predict_proba([text]), 1)
    _assert_valid_prediction(predictor.predict(text, top_k=2), 2)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=12))
def test_any_list_keeps_its_order(predictor: Predictor, texts: list[str]) -> None:
    probs = predictor.predict_proba(texts)
    _assert_distribution(probs, len(texts))
    _assert_same_predictions(predictor, texts)
    reversed_probs = predictor.predict_proba(texts[::-1])
    assert np.allclose(reversed_probs[::-1], probs, atol=1e-6)


# --- collection paused while building results --------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
def test_building_predictions_leaves_garbage_collection_as_it_found_it(
    predictor: Predictor, enabled: bool
) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        predictor.predict([SPACE, BASEBALL])
        assert gc.isenabled() is enabled
        with pytest.raises(ValueError), gc_paused():
            assert not gc.isenabled()
            raise ValueError("an error inside")
        assert gc.isenabled() is enabled  # restored on the way out of an error too
    finally:
        (gc.enable if was else gc.disable)()


def test_building_predictions_runs_at_most_one_collection(predictor: Predictor) -> None:
    """The point of pausing: 2,000 predictions allocate several times gen 0's threshold, and at
    most one collection runs (when collection resumes), not one per threshold's worth."""
    probs = predictor.predict_proba([SPACE] * 2000)
    collections = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        collections[0] += phase == "start"

    gc.callbacks.append(count)
    try:
        predictions = predictor.to_predictions(probs, 3)
    finally:
        gc.callbacks.remove(count)
    assert len(predictions) == 2000 and collections[0] <= 1
    assert 2000 * 3 // gc.get_threshold()[0] >= 3  # unpaused, there would be several
