"""Predictions written straight to the JSON a `PredictResponse` carries: the service's wire format.

Building `Prediction` objects and dumping them costs three times as much as writing the same
bytes directly from the probability matrix, and a one-text request is mostly this. The bytes are
exactly the typed results' JSON (tests/service/test_encoding.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from pydantic import TypeAdapter

from textclf.schemas import Prediction

# Per request: (rows, top_k) of a batch's probability matrix.
Block = tuple[int, int]
# Explained predictions are rare and carry many more fields: pydantic writes them.
_PREDICTIONS = TypeAdapter(list[Prediction])


def encode_predictions(predictions: list[Prediction]) -> bytes:
    """Typed predictions (with explanations) as the JSON array a response carries."""
    return _PREDICTIONS.dump_json(predictions)


class PredictionsJSON:
    """Writes a model's predictions as JSON arrays, one per block of rows."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self._quoted = [json.dumps(label) for label in self.labels]

    def blocks(self, probs: np.ndarray, blocks: Sequence[Block]) -> list[tuple[list[str], bytes]]:
        """For each block: its rows' top labels and their predictions' JSON array. One batch
        scored for several requests is checked and ranked once, not once per request. A top_k
        above the number of labels gives all labels. Scores are written with `repr`, the
        shortest text that reads back as the same float."""
        if sum(rows for rows, _ in blocks) != len(probs):
            raise ValueError(f"the blocks cover {sum(r for r, _ in blocks)} rows, not {len(probs)}")
        if not np.isfinite(probs).all():
            raise ValueError("the model produced non-finite scores")
        deepest = min(max((k for _, k in blocks), default=1), len(self.labels))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :deepest].tolist()
        scores = probs.tolist()
        out, start = [], 0
        for rows, top_k in blocks:
            end = start + rows
            items = self._items(scores[start:end], order[start:end], min(top_k, len(self.labels)))
            top_labels = [self.labels[idx[0]] for idx in order[start:end]]
            out.append((top_labels, f"[{','.join(items)}]".encode()))
            start = end
        return out

    def _items(self, scores: list[list[float]], order: list[list[int]], k: int) -> list[str]:
        quoted, items = self._quoted, []
        for row, idx in zip(scores, order, strict=True):
            top = ",".join([f'{{"label":{quoted[i]},"score":{row[i]!r}}}' for i in idx[:k]])
            best = idx[0]
            items.append(f'{{"label":{quoted[best]},"score":{row[best]!r},"top_k":[{top}]}}')
        return items
