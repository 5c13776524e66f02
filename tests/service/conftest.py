"""Service fixtures: real uvicorn servers (one open, one with an API key) serving the session's
small model, plus an in-process transport for cases a real socket cannot set up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.scoring import ThreadScorer
from service.settings import Settings
from service.testing import LiveServer
from textclf.predictor import Predictor

API_KEY = "test-key-5f0c9b"
# Small limits, so the limit tests send kilobytes, not megabytes; the body limit fits any body
# the schema allows (8 texts of 2,000 characters, each up to 12 bytes as a JSON escape pair),
# so schema fuzzing never meets a 413. torch_threads=None: loading a model must not pin the
# whole test process (and the training tests) to one torch thread.
LIMITS = {
    "max_texts": 8,
    "max_text_chars": 2_000,
    "max_body_bytes": 256 * 1024,
    "torch_threads": None,
}


@pytest.fixture(scope="session")
def settings(trained_model_dir: Path) -> Settings:
    return Settings(model_path=trained_model_dir, api_key=None, **LIMITS)


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[LiveServer]:
    """The service on a free port; the lifespan loads the model from disk, as in production."""
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="session")
def keyed_server(trained_model_dir: Path, predictor: Predictor) -> Iterator[LiveServer]:
    keyed = Settings(model_path=trained_model_dir, api_key=API_KEY, **LIMITS)
    with LiveServer(create_app(keyed, scorer=ThreadScorer(predictor))) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """Raw HTTP to the open server, for requests the typed client would never send."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def keyed_http(keyed_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
