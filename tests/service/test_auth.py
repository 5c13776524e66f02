"""With an API key configured, /v1/* needs it; health, readiness and metrics stay open."""

from __future__ import annotations

import logging

import httpx
import pytest

from service.testing import LiveServer
from textclf.client import AuthenticationError, Client

API_KEY = "test-key-5f0c9b"  # the key tests/service/conftest.py gives `keyed_server`
PREDICT = {"texts": ["the rocket reached orbit"]}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "this endpoint needs an API key"),
        ({"Authorization": "Bearer wrong-key"}, "the API key is not valid"),
        ({"X-API-Key": "wrong-key"}, "the API key is not valid"),
        ({"Authorization": f"Basic {API_KEY}"}, "this endpoint needs an API key"),
        ({"Authorization": "Bearer"}, "this endpoint needs an API key"),
        ({"X-API-Key": "ключ".encode()}, "the API key is not valid"),
    ],
    ids=["missing", "wrong bearer", "wrong x-api-key", "wrong scheme", "empty bearer", "non-ascii"],
)
def test_missing_or_wrong_key_is_401(
    keyed_http: httpx.Client, headers: dict[str, str | bytes], message: str
) -> None:
    for method, path, body in (("POST", "/v1/predict", PREDICT), ("GET", "/v1/model", None)):
        response = keyed_http.request(method, path, json=body, headers=headers)

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()["error"]
        assert error["type"] == "unauthorized"
        assert message in error["message"]
        assert API_KEY not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {API_KEY}"},
        {"authorization": f"bearer {API_KEY}"},
        {"X-API-Key": API_KEY},
    ],
    ids=["bearer", "lowercase bearer", "x-api-key"],
)
def test_right_key_is_accepted(keyed_http: httpx.Client, headers: dict[str, str]) -> None:
    assert keyed_http.post("/v1/predict", json=PREDICT, headers=headers).status_code == 200
    assert keyed_http.get("/v1/model", headers=headers).status_code == 200


def test_auth_is_checked_before_the_body_is_read(keyed_http: httpx.Client) -> None:
    response = keyed_http.post(
        "/v1/predict", content=b"not json", headers={"content-type": "text/plain"}
    )

    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_operational_endpoints_stay_open(keyed_http: httpx.Client, path: str) -> None:
    assert keyed_http.get(path).status_code == 200


def test_no_key_configured_means_no_auth(http: httpx.Client) -> None:
    assert http.post("/v1/predict", json=PREDICT).status_code == 200


def test_client_sends_the_key(keyed_server: LiveServer) -> None:
    with Client(keyed_server.url, api_key=API_KEY) as client:
        assert client.predict("the rocket reached orbit").label
    with (
        Client(keyed_server.url, api_key="wrong") as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.model_info()
    assert info.value.status_code == 401
    assert "not valid" in info.value.message


def test_the_key_is_never_logged(
    keyed_http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        keyed_http.post("/v1/predict", json=PREDICT, headers={"X-API-Key": API_KEY})
        keyed_http.post("/v1/predict", json=PREDICT, headers={"X-API-Key": API_KEY + "x"})

    assert API_KEY not in caplog.text
