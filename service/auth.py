"""API-key authentication for `/v1/*` and `/v2/models/*`, as a pure ASGI middleware installed only
when a key is set.

A middleware rather than a route dependency: it covers every current and future `/v1` route by
construction, it runs before any body is read, and with no key configured it is not in the stack
at all, so it costs nothing. Health, readiness, metrics and the docs stay open, and so do the Open
Inference Protocol's server endpoints (`/v2`, `/v2/health/live`, `/v2/health/ready`): the
protocol leaves authentication to the platform, and probes, like `/healthz`, carry no key.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Unauthorized, error_response

# Prefixes (a tuple, for `str.startswith`): every `/v1` route, and the V2 per-model routes.
PROTECTED_PREFIX = ("/v1/", "/v2/models/")
_MISSING = (
    "this endpoint needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
)
_WRONG = "the API key is not valid; check the key the server was started with"


class APIKeyMiddleware:
    """401 for the protected paths unless the request carries the configured key."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIX):
            problem = self._problem(Headers(scope=scope))
            if problem is not None:
                error = Unauthorized(problem)
                response = error_response(
                    401, error.type, error.message, headers=error.headers, path=scope["path"]
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, headers: Headers) -> str | None:
        supplied = _supplied_key(headers)
        if supplied is None:
            return _MISSING
        # Constant-time comparison, on bytes so that any input compares without raising. The
        # key is never logged or echoed.
        if not hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), self._key):
            return _WRONG
        return None


def _supplied_key(headers: Headers) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return headers.get("x-api-key")
