"""The service's JSON writer gives exactly what dumping the typed predictions gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.encoding import PredictionsJSON
from textclf.predictor import Predictor

TEXTS = [
    "The shuttle launch was delayed by weather",
    "The pitcher threw a no-hitter in the ninth inning",
    "Rendering the polygons with a new shading algorithm",
    "",
    "naïve café 🚀",
]


@pytest.mark.parametrize("blocks", [[(5, 1)], [(2, 1), (0, 2), (3, 20)], [(1, 3)] * 5])
def test_json_blocks_equal_the_typed_predictions(
    predictor: Predictor, blocks: list[tuple[int, int]]
) -> None:
    probs = predictor.predict_proba(TEXTS)
    start = 0
    written = PredictionsJSON(predictor.labels).blocks(probs, blocks)
    for (rows, top_k), (labels, body) in zip(blocks, written, strict=True):
        expected = predictor.to_predictions(probs[start : start + rows], top_k)
        assert json.loads(body) == [p.model_dump() for p in expected]
        assert labels == [p.label for p in expected]
        start += rows


def test_a_top_k_above_the_labels_gives_all_of_them(predictor: Predictor) -> None:
    probs = predictor.predict_proba(TEXTS[:1])
    [(_, body)] = PredictionsJSON(predictor.labels).blocks(probs, [(1, 10**6)])
    ranked = json.loads(body)[0]["top_k"]
    assert sorted(item["label"] for item in ranked) == sorted(predictor.labels)


def test_json_blocks_must_cover_the_rows(predictor: Predictor) -> None:
    probs = predictor.predict_proba(TEXTS[:2])
    with pytest.raises(ValueError, match="cover 3 rows, not 2"):
        PredictionsJSON(predictor.labels).blocks(probs, [(1, 1), (2, 1)])


def test_non_finite_scores_are_refused_not_serialised(predictor: Predictor) -> None:
    probs = predictor.predict_proba(TEXTS[:1])
    probs[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        PredictionsJSON(predictor.labels).blocks(probs, [(1, 1)])
