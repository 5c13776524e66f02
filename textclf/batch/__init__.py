"""Batch scoring of large files: `textclf batch MODEL INPUT --output OUTPUT`, or Ray Data.

Rows stream from a reader (`sources`) through scoring processes (`local`) or a Ray actor pool
(`ray_engine`) into a writer (`sinks`) in input order; `checkpoint` lets an interrupted job go on
where it stopped. Ray users call `predict_dataset(ds, model_path)` on their own dataset.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from textclf.batch.config import BatchConfig

__all__ = ["BatchConfig", "BatchSummary", "predict_dataset", "run_batch"]

_LAZY = {
    "run_batch": "textclf.batch.job",
    "BatchSummary": "textclf.batch.job",
    "predict_dataset": "textclf.batch.ray_engine",
}

if TYPE_CHECKING:
    from textclf.batch.job import BatchSummary, run_batch
    from textclf.batch.ray_engine import predict_dataset


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'textclf.batch' has no attribute {name!r}")
