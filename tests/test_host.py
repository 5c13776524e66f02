"""NumPy scoring (`textclf.host`): the torch model's probabilities, from a process that never
imports torch, refusing every broken folder that `textclf.load` refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import textclf
from tests.service.faults import BREAKAGES, broken_copy
from textclf import host
from textclf.config import TUTORIAL_CATEGORIES
from textclf.errors import ArtifactError
from textclf.features import to_torch
from textclf.newsgroups import load_bydate


@pytest.fixture(scope="module")
def texts(archive: Path) -> list[str]:
    """600 test posts of the fixture models' categories: BATCH_SIZE and a part more."""
    (test,), _ = load_bydate(["test"], archive=archive, categories=TUTORIAL_CATEGORIES)
    return list(test.texts[:600])


@pytest.mark.parametrize("name", ["trained_model_dir", "pairs_model_dir"])
def test_probabilities_are_the_predictors(
    name: str, texts: list[str], request: pytest.FixtureRequest
) -> None:
    folder = request.getfixturevalue(name)
    ours, theirs = host.load(folder), textclf.load(folder)
    got, want = ours.predict_proba(texts), theirs.predict_proba(texts)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got.argmax(1), want.argmax(1))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert ours.labels == theirs.labels and ours.version == theirs.artifact.version


@pytest.mark.parametrize("name", ["trained_model_dir", "pairs_model_dir"])
def test_logits_are_the_torch_models(
    name: str, texts: list[str], request: pytest.FixtureRequest
) -> None:
    """Every layer, the word pairs' term included (the pairs model keeps it)."""
    loaded = textclf.load(request.getfixturevalue(name))
    model, rows = loaded.artifact.model, loaded.artifact.vectorizer.encode(texts)
    with torch.inference_mode():
        want = model(to_torch(rows)).numpy()
    got = host.HostWeights.of(model).logits(rows)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * scale)


def test_the_pairs_model_has_a_pairs_term(pairs_model_dir: Path) -> None:
    """Else the test above would not reach the word-pair branch."""
    assert host.load(pairs_model_dir).weights.bigrams is not None


def test_no_text_gives_an_empty_matrix(trained_model_dir: Path) -> None:
    model = host.load(trained_model_dir)
    assert model.predict_proba([]).shape == (0, len(model.labels))


def test_weights_view_the_mapped_file_read_only(trained_model_dir: Path) -> None:
    weights = host.load(trained_model_dir).weights
    for array in (weights.input, weights.output, weights.input_bias):
        assert not array.flags.owndata and not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        weights.input[0, 0] = 1.0


def test_scoring_never_imports_torch(trained_model_dir: Path) -> None:
    script = (
        "import sys; from textclf import host; "
        f"m = host.load({str(trained_model_dir)!r}, threads=1); "
        "print(m.predict_proba(['the shuttle launch']).shape[0], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"]


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_folder_fails_as_textclf_load_does(
    breakage: str, trained_model_dir: Path, tmp_path: Path
) -> None:
    root, needles = broken_copy(trained_model_dir, tmp_path, breakage)
    with pytest.raises(ArtifactError) as theirs:
        textclf.load(root)
    with pytest.raises(ArtifactError) as ours:
        host.load(root)
    assert str(ours.value) == str(theirs.value)
    for needle in needles:
        assert needle in str(ours.value)
    assert not (root.parent / "pwned").exists()


def test_weights_numpy_cannot_view_are_refused_by_name(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    """bfloat16 weights load in torch; NumPy has no such type, so the host loader says so."""
    from textclf.artifact import load as load_artifact
    from textclf.artifact import save as save_artifact

    artifact = load_artifact(trained_model_dir)
    out = tmp_path / "bf16"
    save_artifact(
        out,
        model=artifact.model.to(torch.bfloat16),
        vectorizer_state=json.loads((trained_model_dir / "vectorizer.json").read_text("utf-8")),
        metadata_={"name": "bf16", "labels": list(artifact.labels)},
    )
    textclf.load(out)  # a valid artifact
    with pytest.raises(ArtifactError, match="BF16") as caught:
        host.load(out)
    assert "model.safetensors" in str(caught.value)
