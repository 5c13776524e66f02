"""Dependencies as `Annotated` aliases: what a route needs, fetched from `app.state`, checked.

All are `async def`: FastAPI runs plain `def` dependencies in a thread pool, which would cost a
thread hop per dependency per request.

The prediction body is read and validated here, by `read_predict_request`, rather than by a
FastAPI body parameter: the body must be size-limited while it streams in, and the content type
must be checked (FastAPI would treat a form post as raw bytes). It is validated by the app's
`PredictRequest` model, which carries the settings' limits and is the one the OpenAPI document
describes (`service.app`). `model_validate_json` on the raw bytes is also faster than
`json.loads` followed by validation.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError

from service.batcher import Batcher
from service.errors import (
    InvalidRequest,
    NotReady,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    summarize,
    validation_problems,
)
from service.holder import ModelHolder
from service.metrics import Metrics
from service.settings import Settings
from textclf.schemas import PredictRequest

_EXAMPLE = 'send a JSON object like {"texts": ["some text"], "top_k": 1}'


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _model(request: Request) -> ModelHolder:
    holder: ModelHolder | None = getattr(request.app.state, "model", None)
    if holder is None:
        raise NotReady("the model is not loaded yet; retry shortly")
    return holder


async def _batcher(request: Request) -> Batcher:
    batcher: Batcher | None = getattr(request.app.state, "batcher", None)
    if batcher is None:
        raise NotReady("the model is not loaded yet; retry shortly")
    return batcher


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(_settings)]
ModelDep = Annotated[ModelHolder, Depends(_model)]
BatcherDep = Annotated[Batcher, Depends(_batcher)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]


async def read_predict_request(request: Request) -> PredictRequest:
    """The validated body of a predict call; raises 408, 413, 415 or 422 saying what to fix.

    A plain function, not a dependency, on purpose: `POST /v1/predict` is the hot path, and each
    FastAPI dependency costs about 15 µs of dependency solving, a large share of a one-text request.
    """
    state = request.app.state
    settings: Settings = state.settings
    if getattr(state, "model", None) is None:
        raise NotReady("the model is not loaded yet; retry shortly")
    _require_json(request.headers.get("content-type"))
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            body = await _read_body(request, settings.max_body_bytes)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {settings.body_timeout_s:g}s; "
            "send it at once, or send less"
        ) from None
    model: type[PredictRequest] = state.predict_request
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = [_explained(e) for e in exc.errors(include_url=False)]
        shape_wrong = any(p["type"] in ("json_invalid", "model_type") for p in problems)
        raise InvalidRequest(
            summarize(problems) + (f"; {_EXAMPLE}" if shape_wrong else ""), errors=problems
        ) from None


def _explained(error: Any) -> dict[str, Any]:
    """A validation problem, with the limits' messages saying how to get under them."""
    (problem,) = validation_problems([error])
    limit = error.get("ctx", {}).get("max_length")
    if problem["type"] == "too_long" and problem["loc"] == ["texts"]:
        problem["type"] = "too_many_texts"
        problem["msg"] = (
            f"at most {limit} texts per request, got {error['ctx'].get('actual_length')}; "
            "split them over several requests"
        )
    elif problem["type"] == "string_too_long" and problem["loc"][:1] == ["texts"]:
        problem["type"] = "text_too_long"
        problem["msg"] = (
            f"text is {len(error['input'])} characters long, the limit is {limit}; shorten it"
        )
    elif problem["type"] == "string_pattern_mismatch" and problem["loc"][:1] == ["texts"]:
        problem["type"] = "text_empty"
        problem["msg"] = "text is empty or only white space; send some words (or leave it out)"
    return problem


def _require_json(content_type: str | None) -> None:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {content_type or 'none'}; {_EXAMPLE}"
        )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed `limit` bytes.

    A declared Content-Length is checked before reading anything; a chunked body is counted as it
    streams, so an endless body costs at most `limit` bytes of memory.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, f"Content-Length is {declared}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, "the streamed body passed it")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, why: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than the {limit}-byte limit ({why}); "
        "send fewer or shorter texts per request"
    )
