"""textclf: TF-IDF + PyTorch MLP text classification, from training to a typed HTTP service.

    model = textclf.load("models/20ng")
    model.predict("The shuttle launch was delayed by weather", top_k=3)

    with textclf.Client("http://127.0.0.1:8000") as client:
        client.predict(["..."])

Heavy modules (torch, scikit-learn, pydantic's schemas) are imported on first use, so
`textclf.Client` stays light and a batch worker (`textclf.host`) starts in a fraction of a second.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from textclf.errors import ArtifactError, ConfigError, DataError, TextclfError

__version__ = "0.1.0"

_LAZY = {
    **dict.fromkeys(
        ("LabelScore", "ModelInfo", "ModelRef", "Prediction", "PredictResponse", "Term"),
        "textclf.schemas",
    ),
    "load": "textclf.predictor",
    "Predictor": "textclf.predictor",
    "Client": "textclf.client",
    "AsyncClient": "textclf.client",
    "train_artifact": "textclf.pipeline",
    "TextClassifier": "textclf.estimator",
}

__all__ = [
    "ArtifactError",
    "AsyncClient",
    "Client",
    "ConfigError",
    "DataError",
    "LabelScore",
    "ModelInfo",
    "ModelRef",
    "PredictResponse",
    "Prediction",
    "Predictor",
    "Term",
    "TextClassifier",
    "TextclfError",
    "load",
    "train_artifact",
]

if TYPE_CHECKING:
    from textclf.client import AsyncClient, Client
    from textclf.estimator import TextClassifier
    from textclf.pipeline import train_artifact
    from textclf.predictor import Predictor, load
    from textclf.schemas import (
        LabelScore,
        ModelInfo,
        ModelRef,
        Prediction,
        PredictResponse,
        Term,
    )


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'textclf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
