"""Typed service errors and the one place that turns every error into an `ErrorResponse` body.

Handlers and dependencies raise `ServiceError` subclasses; nothing else builds error JSON. The
catch-all handler logs the traceback server-side and answers with a generic message, so a client
never sees a stack trace or a file path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from textclf.open_inference import InferenceError
from textclf.schemas import ErrorDetail, ErrorResponse

logger = logging.getLogger("textclf.service")

_STATUS_TYPES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ServiceError(Exception):
    """An error with an HTTP status, a machine-readable type and a message saying what to fix."""

    status_code = 500
    type = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[dict[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)
        self.headers = headers


class BadRequest(ServiceError):
    status_code = 400
    type = "bad_request"


class NotFound(ServiceError):
    status_code = 404
    type = "not_found"


class InvalidRequest(ServiceError):
    status_code = 422
    type = "validation_error"


class PayloadTooLarge(ServiceError):
    status_code = 413
    type = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    type = "unsupported_media_type"


class Unauthorized(ServiceError):
    status_code = 401
    type = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status_code = 403
    type = "forbidden"


class RequestTimeout(ServiceError):
    status_code = 408
    type = "request_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Connection": "close"})


class ReloadFailed(ServiceError):
    status_code = 409
    type = "reload_failed"


class NotReady(ServiceError):
    status_code = 503
    type = "not_ready"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


def error_response(
    status_code: int,
    type_: str,
    message: str,
    errors: Sequence[dict[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
    *,
    path: str = "",
) -> Response:
    """The error body for a request to `path`: the Open Inference Protocol's `{"error": ...}`
    under `/v2`, an `ErrorResponse` everywhere else."""
    body: InferenceError | ErrorResponse
    if _open_inference(path):
        body = InferenceError(error=message)
    else:
        body = ErrorResponse(error=ErrorDetail(type=type_, message=message, errors=list(errors)))
    return Response(
        body.model_dump_json(), status_code, headers=headers, media_type="application/json"
    )


def _open_inference(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def validation_problems(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as JSON-safe dicts, without echoing the (possibly huge) input."""
    return [
        {"loc": [p for p in e.get("loc", ()) if p != "body"], "msg": e["msg"], "type": e["type"]}
        for e in raw
    ]


def summarize(problems: Sequence[dict[str, Any]]) -> str:
    """`texts.0: Input should be a valid string; ...`, the first few problems in one line."""
    parts = [f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}" for p in problems[:3]]
    more = len(problems) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(
        exc.status_code, exc.type, exc.message, exc.errors, exc.headers, path=request.url.path
    )


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = validation_problems(exc.errors())
    path = request.url.path
    status = 400 if _open_inference(path) else 422  # the protocol's status for a bad request
    return error_response(status, InvalidRequest.type, summarize(problems), problems, path=path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.url.path}; see /docs for the API"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    type_ = _STATUS_TYPES.get(exc.status_code, "http_error")
    path = request.url.path
    return error_response(exc.status_code, type_, message, headers=exc.headers, path=path)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Logged with its traceback here, never sent: the client gets a message it can act on.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", "internal server error; the server logged it", path=request.url.path
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def documented(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` for OpenAPI: each status code with the `ErrorResponse` body every
    error gets, and what it means on that route."""
    return {
        code: {"model": ErrorResponse, "description": text} for code, text in descriptions.items()
    }
