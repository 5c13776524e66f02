"""`textclf.load` memory-maps the weights (so processes serving one model share them) and still
verifies them: the parameters view the file's mapping, predictions match a copy loaded from
bytes, and a corrupted weights file is refused before anything is mapped into the model."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_from_bytes

import textclf
from textclf.artifact import WEIGHTS
from textclf.artifact import load as load_artifact
from textclf.errors import ArtifactError

TEXTS = ["the rocket reached orbit", "the goalie stopped the puck"]


def _mapped_files() -> set[str]:
    return {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()}


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_the_weights_are_a_view_of_the_mapped_file(trained_model_dir: Path) -> None:
    artifact = load_artifact(trained_model_dir)
    gc.collect()  # only the tensors keep the mapping alive now

    assert str((trained_model_dir / WEIGHTS).resolve()) in _mapped_files()
    copied = load_from_bytes((trained_model_dir / WEIGHTS).read_bytes())
    for name, tensor in artifact.model.state_dict().items():
        assert torch.equal(tensor, copied[name]), name
        assert tensor.device.type == "cpu"


def test_a_mapped_model_predicts_as_the_trained_one(
    trained_model_dir: Path, predictor: textclf.Predictor
) -> None:
    fresh = textclf.load(trained_model_dir)
    gc.collect()

    np.testing.assert_allclose(fresh.predict_proba(TEXTS), predictor.predict_proba(TEXTS))


def test_a_flipped_byte_in_the_weights_is_refused(trained_model_dir: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(trained_model_dir, tmp_path / "model")
    data = bytearray((broken / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (broken / WEIGHTS).write_bytes(bytes(data))

    with pytest.raises(ArtifactError, match="checksum mismatch"):
        textclf.load(broken)
