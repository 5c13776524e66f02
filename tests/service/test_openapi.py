"""/openapi.json states the limits the running server enforces, as named components."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import get_settings
from service.testing import LiveServer
from textclf.schemas import NOT_BLANK


@pytest.fixture(scope="module")
def limited(trained_model_dir: Path) -> Iterator[LiveServer]:
    """A server configured as a user would: from TEXTCLF_* variables."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TEXTCLF_MODEL_PATH", str(trained_model_dir))
        env.setenv("TEXTCLF_MAX_TEXTS", "64")
        env.setenv("TEXTCLF_MAX_TEXT_CHARS", "500")
        env.setenv("TEXTCLF_SCORER", "thread")
        settings = get_settings()
    with LiveServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def document(limited: LiveServer) -> dict[str, Any]:
    response = httpx.get(f"{limited.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_request_schema_carries_the_settings_limits(document: dict[str, Any]) -> None:
    texts = document["components"]["schemas"]["PredictRequest"]["properties"]["texts"]
    assert (texts["minItems"], texts["maxItems"]) == (1, 64)
    assert texts["items"] == {"type": "string", "maxLength": 500, "pattern": NOT_BLANK}


def test_request_and_response_bodies_are_named_components(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/predict"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PredictRequest"}
    assert answer == {"$ref": "#/components/schemas/PredictResponse"}
    assert str(10 * 1024 * 1024) in operation["requestBody"]["description"]  # the body limit


def test_the_documented_limit_is_the_enforced_one(limited: LiveServer) -> None:
    with httpx.Client(base_url=limited.url, timeout=30) as http:
        at_limit = http.post("/v1/predict", json={"texts": ["orbit"] * 64})
        over = http.post("/v1/predict", json={"texts": ["orbit"] * 65})
        too_long = http.post("/v1/predict", json={"texts": ["x" * 501]})
    assert at_limit.status_code == 200 and len(at_limit.json()["predictions"]) == 64
    assert over.status_code == 422
    assert "at most 64 texts per request, got 65" in over.json()["error"]["message"]
    assert too_long.status_code == 422
    assert "501 characters long, the limit is 500" in too_long.json()["error"]["message"]


def test_reload_is_documented_only_where_it_can_be_used(
    document: dict[str, Any], keyed_server: LiveServer
) -> None:
    keyed = httpx.get(f"{keyed_server.url}/openapi.json", timeout=30).json()
    assert "/v1/admin/reload" not in document["paths"]  # no API key: reloading is off
    assert "/v1/admin/reload" in keyed["paths"]
    assert set(keyed["components"]["securitySchemes"]) == {"bearer", "apiKeyHeader"}
    assert keyed["paths"]["/v1/predict"]["post"]["security"]
    assert "security" not in keyed["paths"]["/healthz"]["get"]
