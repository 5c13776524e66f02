"""Every endpoint over real HTTP: answers match the in-process predictor exactly."""

from __future__ import annotations

import httpx
import pytest

from textclf.predictor import Predictor
from textclf.schemas import Health, ModelInfo, PredictResponse

TEXTS = [
    "The shuttle reached orbit and the astronauts began the experiment",
    "He hit a home run in the ninth inning and the pitcher was furious",
    "Render the polygon mesh with a new shading algorithm in OpenGL",
]


def test_predict_returns_one_prediction_per_text_in_order(
    http: httpx.Client, predictor: Predictor
) -> None:
    response = http.post("/v1/predict", json={"texts": TEXTS, "top_k": 2})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = PredictResponse.model_validate_json(response.content)
    assert body.model == predictor.ref
    assert body.predictions == predictor.predict(TEXTS, top_k=2)
    assert [len(p.top_k) for p in body.predictions] == [2, 2, 2]


def test_predict_defaults_to_top_1(http: httpx.Client) -> None:
    body = http.post("/v1/predict", json={"texts": TEXTS[:1]}).json()

    (prediction,) = body["predictions"]
    assert prediction["top_k"] == [{"label": prediction["label"], "score": prediction["score"]}]


def test_top_k_equal_to_label_count_ranks_every_label(
    http: httpx.Client, predictor: Predictor
) -> None:
    n = len(predictor.labels)
    body = PredictResponse.model_validate_json(
        http.post("/v1/predict", json={"texts": TEXTS[:1], "top_k": n}).content
    )

    ranked = body.predictions[0].top_k
    assert sorted(s.label for s in ranked) == sorted(predictor.labels)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert sum(s.score for s in ranked) == pytest.approx(1.0, abs=1e-5)


def test_model_describes_the_served_model(http: httpx.Client, predictor: Predictor) -> None:
    response = http.get("/v1/model")

    assert response.status_code == 200
    assert ModelInfo.model_validate_json(response.content) == predictor.info


def test_healthz(http: httpx.Client) -> None:
    response = http.get("/healthz")

    assert response.status_code == 200
    assert Health.model_validate_json(response.content) == Health(status="ok")


def test_readyz_once_the_model_answers(http: httpx.Client) -> None:
    response = http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_openapi_documents_the_api(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()

    predict = spec["paths"]["/v1/predict"]["post"]
    body_schema = predict["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/PredictRequest"}
    assert set(spec["components"]["schemas"]["PredictRequest"]["properties"]) == {
        "texts", "top_k", "explain", "explain_terms"
    }
    assert predict["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictResponse"
    }
    assert {"422", "413", "415", "401"} <= set(predict["responses"])
    assert {"/v1/model", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


def test_docs_page_is_served(http: httpx.Client) -> None:
    response = http.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_a_direct_route_refuses_an_endpoint_that_needs_fastapis_handler() -> None:
    """`DirectRoute` calls its endpoint with the bare Request: one that declares parameters or
    a body would silently get none of them, so it is refused when the route is built."""
    from fastapi import APIRouter, Request

    from service.routes import DirectRoute

    async def with_query(request: Request, q: int) -> None: ...

    async def with_body(request: Request, body: Health) -> None: ...

    for endpoint in (with_query, with_body):
        with pytest.raises(TypeError, match="DirectRoute"):
            APIRouter().add_api_route(
                "/x", endpoint, methods=["POST"], route_class_override=DirectRoute
            )
