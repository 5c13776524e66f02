"""The config dataclasses are the one source of every option: each field is a `textclf train`
flag and (unless it is about files) a `TextClassifier` parameter, with the same default."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import io
from typing import Any

import pytest

from textclf.config import ARCHIVE_ENV, DataConfig, FeatureConfig, RunConfig, TrainConfig
from textclf.errors import ConfigError
from training.cli import _run_config, build_parser

OPTIONS = (DataConfig, FeatureConfig, TrainConfig)

# DataConfig fields the estimator has no parameter for, and why: `fit(X, y)` is handed its texts
# and labels in memory, and scoring on held-out data is the caller's business (`score`,
# `cross_val_score`), so there is no file, column, corpus or test split to choose.
CLI_ONLY = {
    "data": "fit takes the texts themselves, not a file",
    "test_data": "the caller scores on test data with `score`",
    "text_column": "no file, so no column",
    "label_column": "no file, so no column",
    "categories": "picks from the 20 Newsgroups corpus, which fit does not load",
    "remove": "edits 20 Newsgroups posts, which fit does not load",
    "archive": "where the 20 Newsgroups corpus lies, which fit does not load",
    "test_size": "no test split is carved out of X",
}
# Config field -> estimator parameter where scikit-learn's conventional name differs.
RENAMED = {"seed": "random_state", "val_size": "validation_size"}


def _fields() -> list[tuple[type[Any], dataclasses.Field[Any]]]:
    return [(cls, f) for cls in OPTIONS for f in dataclasses.fields(cls)]


def _ids() -> list[str]:
    return [f"{cls.__name__}.{f.name}" for cls, f in _fields()]


@pytest.fixture(scope="module")
def train_defaults() -> argparse.Namespace:
    return build_parser().parse_args(["train", "--out", "m"])


@pytest.fixture(scope="module")
def train_help() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    return out.getvalue()


@pytest.mark.parametrize(("cls", "field"), _fields(), ids=_ids())
def test_every_field_documents_itself(cls: type[Any], field: dataclasses.Field[Any]) -> None:
    assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"


@pytest.mark.parametrize(("cls", "field"), _fields(), ids=_ids())
def test_every_field_is_a_train_flag_with_its_default(
    cls: type[Any],
    field: dataclasses.Field[Any],
    train_defaults: argparse.Namespace,
    train_help: str,
) -> None:
    assert "--" + field.name.replace("_", "-") in train_help
    assert hasattr(train_defaults, field.name), f"no flag sets {cls.__name__}.{field.name}"
    assert getattr(train_defaults, field.name) == field.default


def test_no_flags_give_the_default_run(
    train_defaults: argparse.Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ARCHIVE_ENV, raising=False)
    assert _run_config(train_defaults) == RunConfig()


@pytest.mark.parametrize(("cls", "field"), _fields(), ids=_ids())
def test_every_field_is_an_estimator_parameter_with_its_default(
    cls: type[Any], field: dataclasses.Field[Any]
) -> None:
    from textclf.estimator import TextClassifier

    if cls is DataConfig and field.name in CLI_ONLY:
        assert field.name not in TextClassifier().get_params()
        return
    name = RENAMED.get(field.name, field.name)
    parameter = inspect.signature(TextClassifier).parameters[name]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default == field.default
    assert TextClassifier().get_params()[name] == field.default


def test_cli_only_names_only_data_fields() -> None:
    assert set(CLI_ONLY) < {f.name for f in dataclasses.fields(DataConfig)}


def test_max_features_zero_means_all() -> None:
    assert FeatureConfig(max_features=0).max_features is None
    with pytest.raises(ConfigError, match="max_features"):
        FeatureConfig(max_features=-1)
