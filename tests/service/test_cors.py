"""CORS is off unless origins are configured."""

from __future__ import annotations

import httpx
import pytest

from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.anyio
ORIGIN = "https://app.example"


async def _preflight(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.options(
            "/v1/predict",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )


async def test_cors_off_by_default(settings: Settings) -> None:
    response = await _preflight(settings)

    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_configured_origins(settings: Settings) -> None:
    response = await _preflight(settings.model_copy(update={"cors_origins": [ORIGIN]}))

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
