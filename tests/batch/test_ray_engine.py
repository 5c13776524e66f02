"""`--engine ray` on one local Ray session (2 CPUs) for the module: the same rows as the local
engine, and `predict_dataset` on a user's own dataset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.batch.expected import SCORE_TOLERANCE
from textclf.batch import BatchConfig, predict_dataset, run_batch

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ray_with_two_actors_gives_the_local_engines_rows(
    ray_session: None, trained_model_dir: Path, posts: list[str], tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in posts[:300]))
    local, distributed = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run_batch(trained_model_dir, source, local, BatchConfig(workers=0, top_k=2), progress=False)
    config = BatchConfig(engine="ray", workers=2, top_k=2, chunk_size=64)
    summary = run_batch(trained_model_dir, source, distributed, config, progress=False)
    assert summary.scored == 300
    ours, theirs = _rows(local), _rows(distributed)
    assert [r["id"] for r in theirs] == list(range(300))
    for a, b in zip(ours, theirs, strict=True):
        assert (a["label"], a["label_2"]) == (b["label"], b["label_2"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)
        assert a["score_2"] == pytest.approx(b["score_2"], abs=1e-6)


def test_predict_dataset_adds_prediction_columns_and_ray_writes_them(
    ray_session: None, trained_model_dir: Path, predictor: Any, posts: list[str], tmp_path: Path
) -> None:
    """A Ray user's own pipeline: their dataset in, `write_parquet` out (Ray writes the files)."""
    import pyarrow.parquet as pq

    items = [{"doc": i, "text": t} for i, t in enumerate(posts[:50])] + [{"doc": 50, "text": None}]
    ds = predict_dataset(ray.data.from_items(items), trained_model_dir, actors=1)
    ds.write_parquet(str(tmp_path / "scored"))
    rows = sorted(pq.read_table(tmp_path / "scored").to_pylist(), key=lambda r: r["doc"])
    assert len(rows) == 51
    expected = predictor.predict(posts[:50])
    for row, want in zip(rows, expected, strict=False):
        assert row["label"] == want.label
        assert row["score"] == pytest.approx(want.score, abs=SCORE_TOLERANCE)
        assert row["error"] == ""
    assert rows[50]["label"] is None and "must be a string" in rows[50]["error"]
