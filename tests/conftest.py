"""Session-wide fixtures: the real 20 Newsgroups archive and one small model trained once."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from textclf.config import TUTORIAL_CATEGORIES, DataConfig, FeatureConfig, RunConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = REPO.parent / "shared" / "data" / "20news-bydate.tar.gz"


def archive_path() -> Path | None:
    env = os.environ.get("TEXTCLF_20NG_ARCHIVE")
    path = Path(env) if env else DEFAULT_ARCHIVE
    return path if path.exists() else None


@pytest.fixture(scope="session")
def archive() -> Path:
    path = archive_path()
    if path is None:
        pytest.skip("20 Newsgroups archive not found (set TEXTCLF_20NG_ARCHIVE)")
    return path


def small_run_config(archive: Path, remove: tuple[str, ...] = (), **train: object) -> RunConfig:
    """The tutorial's three categories, a narrow model and a few epochs: trains in seconds."""
    return RunConfig(
        data=DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES, remove=remove),
        features=FeatureConfig(ngram_range=(1, 2), max_features=20_000),
        train=TrainConfig(**{"hidden": (32,), "epochs": 4, "patience": 2, **train}),  # type: ignore[arg-type]
        name="test-model",
    )


@pytest.fixture(scope="session")
def trained_model_dir(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from textclf.pipeline import train_artifact

    out = tmp_path_factory.mktemp("models") / "small"
    train_artifact(small_run_config(archive), out, progress=False)
    return out


@pytest.fixture(scope="session")
def pairs_model_dir(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model that keeps its word-pair naive Bayes term: unigrams in the first layer,
    headers, footers and quotes removed (where pairs help most), no minimum gain asked."""
    from textclf.pipeline import train_artifact

    out = tmp_path_factory.mktemp("models") / "pairs"
    config = small_run_config(archive, ("headers", "footers", "quotes"), bigram_min_gain=0.0)
    unigrams = FeatureConfig(ngram_range=(1, 1), max_features=20_000)
    train_artifact(replace(config, features=unigrams), out, progress=False)
    return out


@pytest.fixture(scope="session")
def predictor(trained_model_dir: Path):  # type: ignore[no-untyped-def]
    import textclf

    return textclf.load(trained_model_dir)
