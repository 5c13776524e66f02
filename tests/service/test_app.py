"""The app factory's lifespan: a model that cannot be loaded stops startup, with the loader's
message, whichever way the app is started."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.app import create_app
from service.settings import Settings
from service.testing import LiveServer


def test_startup_fails_with_the_loaders_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(model_path=tmp_path / "missing", torch_threads=None))

    with caplog.at_level(logging.ERROR, logger="textclf"), pytest.raises(RuntimeError):
        LiveServer(app).start()

    assert "cannot load the model from" in caplog.text
    assert "no such model folder" in caplog.text


def test_uvicorn_factory_exits_non_zero_when_the_model_is_missing(tmp_path: Path) -> None:
    """The path each worker takes under `--workers N`: settings from the environment."""
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", "0"],
        env={**os.environ, "TEXTCLF_MODEL_PATH": str(tmp_path / "missing")},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "no such model folder" in result.stderr


def test_fastapis_own_opentelemetry_is_off_unless_the_settings_turn_it_on(
    settings: Settings,
) -> None:
    import inspect

    from fastapi import FastAPI

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        pytest.skip("this FastAPI has no built-in OpenTelemetry")
    kinds = ("tracing", "metrics", "logs")
    off = create_app(settings)
    on = create_app(settings.model_copy(update={"opentelemetry": True}))
    assert not any(off._telemetry[kind] for kind in kinds)  # type: ignore[attr-defined]
    assert all(on._telemetry[kind] for kind in kinds)  # type: ignore[attr-defined]
