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
from textclf.config import TUTORIAL_CATEGORIES, ModelConfig
from textclf.errors import ArtifactError
from textclf.features import Encoded, to_torch
from textclf.model import MLP
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
    model = host.load(trained_model_dir)
    mapped = np.frombuffer(model.files.weights, np.uint8)
    for array in (model.weights.input, model.weights.output, model.weights.input_bias):
        assert np.shares_memory(array, mapped) and not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        model.weights.input[0, 0] = 1.0


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(n_features=60, n_labels=3, hidden=(16,)),
        ModelConfig(n_features=60, n_labels=4, hidden=(16, 8, 5), wide=True),
        ModelConfig(n_features=60, n_labels=3, hidden=(12, 6), n_bigrams=20),
        ModelConfig(n_features=60, n_labels=5, hidden=(9, 7), wide=True, n_bigrams=15),
    ],
    ids=["plain", "deep-wide", "deep-pairs", "deep-wide-pairs"],
)
def test_every_model_shape_gives_the_torch_logits(config: ModelConfig) -> None:
    """Hidden layers, no wide columns, word pairs: what the fixture models do not exercise.
    Rows are random, some empty, their columns in no order (as `encode` leaves them)."""
    torch.manual_seed(0)
    model = MLP(config).eval()
    if model.bigrams is not None:
        model.bigrams.normal_()
    rng = np.random.default_rng(0)
    sizes = rng.integers(0, 12, size=9)
    sizes[[0, 4]] = 0
    indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    indices = np.concatenate([rng.permutation(config.n_features)[:n] for n in sizes]).astype(
        np.int64
    )
    rows = Encoded(indptr, indices, rng.random(len(indices), dtype=np.float32), config.n_features)
    with torch.inference_mode():
        want = model(to_torch(rows)).numpy()
    got = host.HostWeights.of(model).logits(rows)
    assert got.shape == want.shape == (9, config.n_labels)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert not np.array_equal(want[1], want[2])  # rows that differ give different logits


def test_a_lone_string_or_a_non_string_is_refused(trained_model_dir: Path) -> None:
    model = host.load(trained_model_dir)
    with pytest.raises(TypeError, match="single string"):
        model.predict_proba("the shuttle launch")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        model.predict_proba(["a", 3])  # type: ignore[list-item]


def test_a_batch_worker_imports_neither_torch_nor_pydantic(trained_model_dir: Path) -> None:
    """What a spawned `textclf batch` worker runs: the CLI module (spawn imports the parent's
    main), the chunk scorer, a chunk; and its BLAS is held to one thread."""
    script = f"""
import sys
import training.cli
from threadpoolctl import threadpool_info
from textclf.batch.local import ScorerSpec, Texts, worker_scorer
scorer = worker_scorer(ScorerSpec({str(trained_model_dir)!r}, 2, "jsonl", None))
data, bad = scorer(Texts([0, 1], ["the shuttle launch", "a new graphics card"]))
blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
print(data.count(b"\\n"), len(bad), "torch" in sys.modules, "pydantic" in sys.modules, blas)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "0", "False", "False", "[1]"], out.stdout


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
    """textclf writes float32 weights; a folder re-saved in bfloat16 is refused by name (NumPy
    has no bfloat16, and torch's sparse CPU product has no kernel for it either)."""
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
    with pytest.raises(ArtifactError, match=r"weights are BF16.*float32") as caught:
        host.load(out)
    assert "model.safetensors" in str(caught.value)
