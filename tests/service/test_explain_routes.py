"""`POST /v1/predict` with `"explain": true`, through real servers (both scorers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from service.testing import LiveServer
from textclf.predictor import Predictor

SPACE = (
    "Subject: Shuttle launch\n\nNASA's shuttle launch to orbit was delayed; the SPACE station "
    "waits."
)


def _check_spans(text: str, explanation: list[dict[str, Any]]) -> None:
    assert explanation
    for term in explanation:
        assert set(term) == {"term", "weight", "spans"}
        assert term["spans"], term
        for start, end in term["spans"]:
            assert text[start:end].lower().split() == term["term"].split()


def test_an_explained_one_text_request_returns_terms_whose_spans_cut_the_words(
    http: httpx.Client, predictor: Predictor
) -> None:
    response = http.post("/v1/predict", json={"texts": [SPACE], "explain": True})
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert prediction["label"] == "sci.space"
    assert len(prediction["explanation"]) == 10  # the default
    _check_spans(SPACE, prediction["explanation"])
    local = predictor.predict(SPACE, explain=True)
    assert local.explanation is not None
    assert [t["term"] for t in prediction["explanation"]] == [t.term for t in local.explanation]


def test_explain_terms_and_top_k_together_and_a_mixed_batch(http: httpx.Client) -> None:
    unknown = "zqxjv wvkjq"  # no word the model knows: nothing to explain
    body = {"texts": [SPACE, unknown, "a pitcher"], "explain": True, "explain_terms": 2, "top_k": 2}
    predictions = http.post("/v1/predict", json=body).json()["predictions"]
    assert [len(p["explanation"]) for p in predictions] == [2, 0, 1]
    assert all(len(p["top_k"]) == 2 for p in predictions)


def test_without_explain_the_response_is_unchanged(http: httpx.Client) -> None:
    plain = http.post("/v1/predict", json={"texts": [SPACE], "top_k": 2})
    off = http.post("/v1/predict", json={"texts": [SPACE], "top_k": 2, "explain": False})
    assert b"explanation" not in plain.content
    assert plain.content == off.content


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("explain", 1),
        ("explain", "true"),
        ("explain", None),
        ("explain_terms", 0),
        ("explain_terms", 101),
        ("explain_terms", "3"),
        ("explain_terms", 2.5),
        ("explain_terms", True),
    ],
)
def test_bad_explain_values_get_a_422_naming_the_field(
    http: httpx.Client, field: str, value: object
) -> None:
    body = {"texts": [SPACE], "explain": True, field: value}
    response = http.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in error["message"]
    assert any(field in problem["loc"] for problem in error["errors"])


def test_the_openapi_document_describes_explanations(http: httpx.Client) -> None:
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    request = schemas["PredictRequest"]["properties"]
    assert request["explain"]["type"] == "boolean" and request["explain"]["default"] is False
    terms = request["explain_terms"]
    assert (terms["minimum"], terms["maximum"], terms["default"]) == (1, 100, 10)
    explanation = json.dumps(schemas["Prediction"]["properties"]["explanation"])
    assert "#/components/schemas/Term" in explanation
    term = schemas["Term"]["properties"]
    assert set(term) == {"term", "weight", "spans"}
    assert "log p(label | text)" in term["weight"]["description"]


@pytest.fixture(scope="module")
def process_server(trained_model_dir: Path) -> Iterator[LiveServer]:
    settings = Settings(model_path=trained_model_dir, api_key=None, scorer="process")
    with LiveServer(create_app(settings)) as live:
        yield live


def test_the_process_scorer_explains_as_the_thread_scorer_does(
    process_server: LiveServer, http: httpx.Client
) -> None:
    body = {"texts": [SPACE, "the pitcher threw"], "explain": True, "explain_terms": 5}
    child = httpx.post(f"{process_server.url}/v1/predict", json=body, timeout=30)
    assert child.status_code == 200, child.text
    here = http.post("/v1/predict", json=body)
    assert child.json()["predictions"] == here.json()["predictions"]
    _check_spans(SPACE, child.json()["predictions"][0]["explanation"])
    plain = httpx.post(f"{process_server.url}/v1/predict", json={"texts": [SPACE]}, timeout=30)
    assert b"explanation" not in plain.content
