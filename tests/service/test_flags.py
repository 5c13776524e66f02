"""`textclf serve` flags come from `Settings`: every setting is one, with the same meaning."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from service.cli import add_arguments
from service.flags import NOT_FLAGS, as_environment, settings_overrides
from service.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser


def test_every_setting_but_the_folder_and_the_key_is_a_flag() -> None:
    flags = set(vars(_parser().parse_args(["models/x"])))
    assert set(Settings.model_fields) - NOT_FLAGS <= flags
    assert "api_key" not in flags  # a secret on a command line shows in `ps`


def test_flags_left_out_leave_the_settings_to_the_environment() -> None:
    args = _parser().parse_args(["models/x"])
    assert settings_overrides(args) == {}


def test_flags_parse_to_the_settings_types() -> None:
    args = _parser().parse_args(
        [
            "models/x",
            "--max-texts=64",
            "--batch-wait-ms=0.5",
            "--scorer=thread",
            "--no-access-log",
            "--torch-threads=none",
            "--cors-origins",
            "https://a.example",
            "https://b.example",
        ]
    )
    overrides = settings_overrides(args)
    settings = Settings(model_path=Path("models/x"), **overrides)
    assert (settings.max_texts, settings.batch_wait_ms, settings.scorer) == (64, 0.5, "thread")
    assert settings.access_log is False and settings.torch_threads is None
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_bad_values_are_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["models/x", "--scorer=gpu"])


def test_worker_processes_read_the_same_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overrides = {
        "model_path": tmp_path,
        "max_texts": 64,
        "access_log": True,
        "cors_origins": ["https://a.example"],
        "scorer": "thread",
        "torch_threads": None,
    }
    for name, value in as_environment(overrides).items():
        monkeypatch.setenv(name, value)
    from service.settings import get_settings

    assert get_settings() == Settings(**overrides)  # type: ignore[arg-type]
