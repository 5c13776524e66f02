"""Settings come from TEXTCLF_* variables, with documented defaults, and bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings, get_settings


def test_defaults(tmp_path: Path) -> None:
    settings = Settings(model_path=tmp_path)

    assert settings.max_texts == 256
    assert settings.max_text_chars == 100_000
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.api_key is None
    assert settings.cors_origins == []
    assert settings.log_level == "info"
    assert settings.torch_threads == 1
    assert settings.batch_wait_ms == 1.0


def test_get_settings_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEXTCLF_MODEL_PATH", str(tmp_path))
    monkeypatch.setenv("TEXTCLF_MAX_TEXTS", "12")
    monkeypatch.setenv("TEXTCLF_API_KEY", "k3y")
    monkeypatch.setenv("TEXTCLF_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("TEXTCLF_CORS_ORIGINS", '["https://app.example"]')

    settings = get_settings()

    assert settings.model_path == tmp_path
    assert settings.max_texts == 12
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k3y"
    assert "k3y" not in repr(settings)
    assert settings.log_level == "debug"
    assert settings.cors_origins == ["https://app.example"]


def test_model_path_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEXTCLF_MODEL_PATH", raising=False)

    with pytest.raises(ValidationError, match="model_path"):
        get_settings()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_texts", 0, "greater than or equal to 1"),
        ("api_key", " ", "unset TEXTCLF_API_KEY"),
        ("log_level", "loud", "Input should be"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(model_path=tmp_path, **{field: value})
