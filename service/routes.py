"""HTTP routes: each one fetches what it needs through `deps` and hands the work on.

No ML here: predictions come from the micro-batcher, model facts from the predictor. Responses
are serialised once with pydantic's Rust serializer and returned as bytes; `response_model` stays
declared so the OpenAPI document describes them.

`POST /v1/predict` is a `DirectRoute`: FastAPI calls it with the bare `Request`, without its
per-request handler (dependency solving, content-type sniffing, per-operation telemetry), which
took ~18 us per one-text request (under load, the worker's CPU per request went from ~105 to
~82 us). Its body is read and validated by `deps.read_predict_request`, with the same errors,
against the app's `PredictRequest` model; the OpenAPI document's request body refers to that
model's component, which the app generates from it (`service.app`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from service.deps import BatcherDep, MetricsDep, ModelDep, SettingsDep, read_predict_request
from service.errors import NotReady, documented
from service.metrics import CONTENT_TYPE
from textclf.schemas import Health, ModelInfo, PredictRequest, PredictResponse

logger = logging.getLogger("textclf.service")

_JSON = "application/json"
_COMPONENT = "#/components/schemas/"  # service.openapi adds the request model there
_ERRORS = documented(
    {
        401: "Missing or wrong API key (only when the server has one).",
        408: "The request body arrived too slowly.",
        413: "Request body too large.",
        415: "Content-Type is not application/json.",
        422: "Invalid body: the message says which field and how to fix it.",
        503: "Model not loaded yet or shutting down; retry.",
    }
)

# One router, full paths, handed to `FastAPI(routes=...)` by the app factory: in the FastAPI
# versions we run, `include_router` adds a per-request routing step (~10 µs) to every call.
# API keys are checked for all of /v1/ by service.auth's middleware.
router = APIRouter()
_MODEL: list[str | Enum] = ["model"]
_OPS: list[str | Enum] = ["operations"]


class DirectRoute(APIRoute):
    """A route whose endpoint takes only the `Request` and returns a `Response`, called as it is.

    `get_route_handler` is FastAPI's hook for custom route classes ("Custom Request and APIRoute
    class" in its docs). The route is still an `APIRoute`: its OpenAPI description, exception
    handlers and middleware are unchanged; only dependency injection is skipped, so the endpoint
    declares none."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # Checked on the endpoint's own signature (FastAPI would inject nothing into it).
        if len(inspect.signature(self.endpoint).parameters) != 1:
            raise TypeError(f"{self.path}: a DirectRoute endpoint takes only the Request")
        return self.endpoint


async def predict(request: Request) -> Response:
    """One prediction per text, in request order, each with its `top_k` most likely labels."""
    # The hot path takes no FastAPI dependencies (see deps.read_predict_request).
    question = await read_predict_request(request)
    state = request.app.state
    explain_terms = question.explain_terms if question.explain else 0
    result = await state.batcher.predict(
        question.texts, question.top_k, explain_terms=explain_terms
    )
    state.metrics.observe_labels(result.labels)
    # A `PredictResponse`, assembled from its parts' JSON (the predictions come serialised).
    model = result.model.model_dump_json().encode()
    body = b'{"model":' + model + b',"predictions":' + result.predictions_json + b"}"
    return Response(body, media_type=_JSON)


router.add_api_route(
    "/v1/predict",
    predict,
    methods=["POST"],
    route_class_override=DirectRoute,
    tags=_MODEL,
    response_model=PredictResponse,
    responses=_ERRORS,
    summary="Classify texts",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": {"$ref": _COMPONENT + PredictRequest.__name__}}},
        }
    },
)


@router.get(
    "/v1/model",
    tags=_MODEL,
    response_model=ModelInfo,
    responses=_ERRORS,
    summary="Describe the model",
)
async def model_info(model: ModelDep) -> Response:
    """Name, version (content hash), labels, training metrics and configuration."""
    return Response(model.scorer.info.model_dump_json(), media_type=_JSON)


@router.get("/healthz", tags=_OPS, response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The process is up and its event loop answers. Says nothing about the model."""
    return Health(status="ok")


@router.get(
    "/readyz",
    tags=_OPS,
    response_model=Health,
    responses=documented({503: "Not ready."}),
    summary="Readiness",
)
async def readyz(batcher: BatcherDep, settings: SettingsDep) -> Health:
    """The model is loaded and answers a probe prediction within `ready_timeout_s`."""
    try:
        await asyncio.wait_for(batcher.predict(["readiness probe"], 1), settings.ready_timeout_s)
    except TimeoutError:
        raise NotReady(
            f"the model did not answer within {settings.ready_timeout_s}s; it may be overloaded"
        ) from None
    except NotReady:
        raise
    except Exception as exc:
        logger.error("readiness probe failed", exc_info=exc)
        raise NotReady("the model failed a probe prediction; see the server log") from None
    return Health(status="ready")


@router.get(
    "/metrics",
    tags=_OPS,
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)
