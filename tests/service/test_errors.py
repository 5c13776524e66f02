"""Bad requests get JSON errors that say what to fix, never a 500, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.scoring import ThreadScorer
from service.settings import Settings
from textclf.predictor import Predictor
from textclf.schemas import ErrorResponse, PredictResponse

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}


def _chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    """A body of about `total` bytes with no Content-Length: httpx sends it chunked."""
    yield b'{"texts": ["'
    for _ in range(total // size + 1):
        yield b"a" * size
    yield b'"]}'


@dataclass(frozen=True)
class Case:
    """A bad request built from the server's limits, and what the answer must say."""

    name: str
    request: Callable[[Settings], dict[str, Any]]
    status: int
    message: Callable[[Settings], str]


def _json(body: Any) -> Callable[[Settings], dict[str, Any]]:
    return lambda s: {"json": body}


def _raw(
    body: bytes, content_type: str | None = "application/json"
) -> Callable[[Settings], dict[str, Any]]:
    headers = {} if content_type is None else {"content-type": content_type}
    return lambda s: {"content": body, "headers": headers}


def _says(text: str) -> Callable[[Settings], str]:
    return lambda s: text


INVALID = [
    Case("empty list", _json({"texts": []}), 422, _says("texts: List should have at least 1 item")),
    Case(
        "non-string item",
        _json({"texts": ["ok", 3]}),
        422,
        _says("texts.1: Input should be a valid string"),
    ),
    Case(
        "null item", _json({"texts": [None]}), 422, _says("texts.0: Input should be a valid string")
    ),
    Case("null body", _raw(b"null"), 422, _says("body: Input should be an object")),
    Case(
        "texts not a list",
        _json({"texts": "a string"}),
        422,
        _says("texts: Input should be a valid"),
    ),
    Case("texts missing", _json({"top_k": 1}), 422, _says("texts: Field required")),
    Case(
        "unknown field",
        _json({"texts": ["a"], "k": 2}),
        422,
        _says("k: Extra inputs are not permitted"),
    ),
    Case(
        "too many texts",
        lambda s: {"json": {"texts": ["a"] * (s.max_texts + 1)}},
        422,
        lambda s: f"texts: at most {s.max_texts} texts per request, got {s.max_texts + 1}",
    ),
    Case(
        "text too long",
        lambda s: {"json": {"texts": ["ok", "x" * (s.max_text_chars + 1)]}},
        422,
        lambda s: (
            f"texts.1: text is {s.max_text_chars + 1} characters long, "
            f"the limit is {s.max_text_chars}"
        ),
    ),
    Case(
        "blank text",
        _json({"texts": ["ok", " \n\t "]}),
        422,
        _says("texts.1: text is empty or only white space; send some words"),
    ),
    Case(
        "empty text",
        _json({"texts": [""]}),
        422,
        _says("texts.0: text is empty or only white space"),
    ),
    Case(
        "top_k zero",
        _json({"texts": ["a"], "top_k": 0}),
        422,
        _says("top_k: Input should be greater"),
    ),
    Case(
        "top_k not a number",
        _json({"texts": ["a"], "top_k": "x"}),
        422,
        _says("top_k: Input should be a valid integer"),
    ),
    Case(
        "top_k a boolean",
        _json({"texts": ["a"], "top_k": True}),
        422,
        _says("top_k: Input should be a valid integer"),
    ),
    Case(
        "top_k a numeric string",
        _json({"texts": ["a"], "top_k": "3"}),
        422,
        _says("top_k: Input should be a valid integer"),
    ),
    Case("invalid JSON", _raw(b'{"texts": ['), 422, _says("Invalid JSON")),
    Case("empty body", _raw(b""), 422, _says("Invalid JSON")),
    Case(
        "body over the limit",
        lambda s: {"content": b"a" * (s.max_body_bytes + 1), "headers": JSON},
        413,
        lambda s: f"larger than the {s.max_body_bytes}-byte limit (Content-Length is",
    ),
    Case(
        "chunked body over the limit",
        lambda s: {"content": _chunks(s.max_body_bytes + 1), "headers": JSON},
        413,
        lambda s: f"larger than the {s.max_body_bytes}-byte limit (the streamed body passed it)",
    ),
    Case(
        "form post",
        lambda s: {"data": {"texts": "a"}},
        415,
        _says("Content-Type must be application/json"),
    ),
    Case("text/plain", _raw(b'{"texts": ["a"]}', "text/plain"), 415, _says("got text/plain")),
    Case("no content type", _raw(b'{"texts": ["a"]}', None), 415, _says("got none")),
]


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_request_gets_json_error_and_server_keeps_serving(
    http: httpx.Client, settings: Settings, case: Case
) -> None:
    response = http.post("/v1/predict", **case.request(settings))

    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    error = ErrorResponse.model_validate_json(response.content).error
    assert case.message(settings) in error.message
    if case.status == 422:
        assert error.type == "validation_error"
        assert error.errors, "422 responses list the problems per field"
    _still_serving(http)


def test_chunked_body_under_the_limit_is_accepted(http: httpx.Client) -> None:
    response = http.post("/v1/predict", content=_chunks(1000, size=100), headers=JSON)

    assert response.status_code == 200, response.text


def test_charset_and_json_suffix_content_types_are_accepted(http: httpx.Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.textclf+json"):
        response = http.post(
            "/v1/predict", content=b'{"texts": ["a"]}', headers={"content-type": content_type}
        )
        assert response.status_code == 200, content_type


def test_several_problems_are_all_listed(http: httpx.Client, settings: Settings) -> None:
    body = {"texts": ["a"] * (settings.max_texts + 1), "top_k": 0}

    error = ErrorResponse.model_validate_json(http.post("/v1/predict", json=body).content).error

    assert {e["type"] for e in error.errors} == {"too_many_texts", "greater_than_equal"}


def test_a_top_k_above_the_labels_gets_all_labels(http: httpx.Client) -> None:
    labels = http.get("/v1/model").json()["labels"]
    for top_k in (len(labels) + 1, 10**30):
        response = http.post("/v1/predict", json={"texts": ["a"], "top_k": top_k})
        assert response.status_code == 200, response.text
        ranked = response.json()["predictions"][0]["top_k"]
        assert sorted(item["label"] for item in ranked) == sorted(labels)


def test_unknown_path_and_wrong_method_are_json(http: httpx.Client) -> None:
    missing = http.get("/v0/predict")  # not /v2: that is the Open Inference Protocol's
    wrong_method = http.get("/v1/predict")

    assert missing.status_code == 404
    assert ErrorResponse.model_validate_json(missing.content).error.type == "not_found"
    assert wrong_method.status_code == 405
    assert "GET is not allowed on /v1/predict" in wrong_method.json()["error"]["message"]
    _still_serving(http)


class _BrokenPredictor:
    """The real predictor's metadata, but inference fails with an internal-looking error."""

    def __init__(self, real: Predictor) -> None:
        self.labels, self.ref, self.info = real.labels, real.ref, real.info

    def predict_proba(self, texts: list[str]) -> Any:
        raise RuntimeError("boom in /srv/secret/textclf/predictor.py line 42")


async def test_unexpected_error_is_a_generic_500_without_internals(
    settings: Settings, predictor: Predictor
) -> None:
    app = create_app(settings, scorer=ThreadScorer(_BrokenPredictor(predictor)))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        response = await client.post("/v1/predict", json={"texts": ["a"]})
        ready = await client.get("/readyz")

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "type": "internal_error",
            "message": "internal server error; the server logged it",
            "errors": [],
        }
    }
    assert "secret" not in response.text and "Traceback" not in response.text
    assert ready.status_code == 503
    assert "failed a probe prediction" in ready.json()["error"]["message"]


async def test_not_ready_until_the_lifespan_has_loaded_the_model(settings: Settings) -> None:
    app = create_app(settings)  # ASGITransport does not run the lifespan: no model loaded
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        health = await c.get("/healthz")
        ready = await c.get("/readyz")
        predict = await c.post("/v1/predict", json={"texts": ["a"]})

    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["error"]["type"] == "not_ready"
    assert "not loaded yet" in ready.json()["error"]["message"]
    assert ready.headers["retry-after"] == "1"
    assert predict.status_code == 503


def _still_serving(http: httpx.Client) -> None:
    response = http.post("/v1/predict", json={"texts": ["the rocket reached orbit"]})
    assert response.status_code == 200
    PredictResponse.model_validate_json(response.content)
