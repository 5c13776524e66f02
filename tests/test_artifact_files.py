"""The torch-free half of loading: the weights' expected names and shapes are the MLP's own."""

from __future__ import annotations

import pytest
import torch

from textclf.artifact_files import weight_shapes
from textclf.config import ModelConfig
from textclf.model import MLP


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(n_features=50, n_labels=3, hidden=(8,)),
        ModelConfig(n_features=50, n_labels=4, hidden=(16, 8, 4), wide=True),
        ModelConfig(n_features=50, n_labels=2, hidden=(8, 6), n_bigrams=20),
        ModelConfig(n_features=50, n_labels=5, hidden=(7,), wide=True, n_bigrams=11),
    ],
    ids=["plain", "deep-wide", "pairs", "wide-pairs"],
)
def test_weight_shapes_are_the_state_dicts(config: ModelConfig) -> None:
    with torch.device("meta"):
        model = MLP(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert weight_shapes(config) == expected
