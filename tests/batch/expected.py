"""What a batch row must hold for a text: `textclf.load(MODEL).predict`'s labels, and its scores
to float32 rounding.

The engines score in NumPy (`textclf.host`), `Predictor` in torch: the same steps on the same
weights, but a dense product's BLAS (OpenBLAS vs MKL) may sum in another order, a few units in the
last place of a logit. On the test models that moves a score by up to ~1.3e-6.
"""

from __future__ import annotations

from typing import Any

import pytest

SCORE_TOLERANCE = 1e-5


def predicted_rows(predictions: list[Any], ids: list[Any] | None = None) -> list[dict[str, Any]]:
    """The batch rows `predictions` (from `Predictor.predict`) stand for."""
    rows = []
    for i, p in enumerate(predictions):
        row: dict[str, Any] = {
            "id": i if ids is None else ids[i],
            "label": p.label,
            "score": p.score,
        }
        for rank, top in enumerate(p.top_k[1:], start=2):
            row[f"label_{rank}"], row[f"score_{rank}"] = top.label, top.score
        rows.append(row)
    return rows


def assert_rows_match(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Same rows, same order, same columns and labels; scores within SCORE_TOLERANCE."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert list(a) == list(b), (a, b)
        for key, value in b.items():
            if key.startswith("score") and value is not None:
                assert a[key] == pytest.approx(value, abs=SCORE_TOLERANCE), (key, a, b)
            else:
                assert a[key] == value, (key, a, b)
