"""Scores to output rows, and rows to the bytes of a chunk: one definition for every engine.

A row is `id, label, score` and, with top_k K > 1, `label_2, score_2, ..., label_K, score_K`:
the same flat columns in JSON Lines, CSV and Parquet. Ranks follow `Predictor.predict` (a stable
sort of the probabilities), so a batch row equals `textclf.load(MODEL).predict` on its text (its
scores to 1e-5, float32 rounding: the engines score in NumPy, `textclf.host`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np


def columns(top_k: int) -> list[str]:
    names = ["id", "label", "score"]
    for rank in range(2, top_k + 1):
        names += [f"label_{rank}", f"score_{rank}"]
    return names


def prediction_rows(
    ids: Sequence[Any], probs: np.ndarray, labels: Sequence[str], top_k: int
) -> list[dict[str, Any]]:
    k = min(top_k, len(labels))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    names = columns(top_k)[1:]
    rows = []
    for id_, scores, idx in zip(ids, probs.tolist(), order.tolist(), strict=True):
        row: dict[str, Any] = {"id": id_}
        ranked = [v for i in idx for v in (labels[i], scores[i])]
        ranked += [None] * (len(names) - len(ranked))  # top_k above the labels: empty columns
        row.update(zip(names, ranked, strict=True))
        rows.append(row)
    return rows


def encode(fmt: str, rows: list[dict[str, Any]], top_k: int) -> bytes:
    """A chunk's bytes: JSON lines, CSV lines (no header), or a whole Parquet file."""
    if fmt == "jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([list(r.values()) for r in rows])
        return buffer.getvalue().encode()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=_schema(rows, top_k))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def csv_header(top_k: int) -> bytes:
    return (",".join(columns(top_k)) + "\n").encode()


def _schema(rows: list[dict[str, Any]], top_k: int) -> Any:
    import pyarrow as pa

    ids = pa.array([r["id"] for r in rows]).type if rows else pa.int64()
    fields = [pa.field("id", ids)]
    for name in columns(top_k)[1:]:
        fields.append(pa.field(name, pa.string() if name.startswith("label") else pa.float64()))
    return pa.schema(fields)
