"""The OpenAPI document as the contract: what it states is what the server enforces.

FastAPI writes the document from the routes; this adds what only the running settings know
(FastAPI's "Extending OpenAPI" recipe: replace `app.openapi` with a function that post-processes
the generated document once). `POST /v1/predict` validates its body itself (`service.deps`), so
its request schema is added here as a named component, generated from the very model that
validates it (`textclf.schemas.limited_predict_request`), never copied by hand. With an API key
configured, `/v1/*` operations declare the two ways of sending it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.auth import PROTECTED_PREFIX
from service.settings import Settings

_REF = "#/components/schemas/{model}"
_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def install_openapi(app: FastAPI, settings: Settings, models: Sequence[type[BaseModel]]) -> None:
    """Make `app.openapi()` include `models` as components and the settings' limits."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()  # FastAPI's own; it caches it in app.openapi_schema
        _add_components(document, models)
        _describe_limits(document, settings)
        if settings.api_key is not None:
            _add_security(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way


def _add_components(document: dict[str, Any], models: Sequence[type[BaseModel]]) -> None:
    _, definitions = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(definitions.get("$defs", {}))


def _describe_limits(document: dict[str, Any], settings: Settings) -> None:
    """The body limit, which JSON Schema cannot state, in the request bodies' descriptions."""
    for path in document["paths"].values():
        for operation in path.values():
            body = operation.get("requestBody")
            if body is not None:
                body["description"] = (
                    f"At most {settings.max_body_bytes} bytes; a larger body gets 413."
                )


def _add_security(document: dict[str, Any]) -> None:
    document.setdefault("components", {})["securitySchemes"] = dict(_SCHEMES)
    for route, path in document["paths"].items():
        if route.startswith(PROTECTED_PREFIX):
            for operation in path.values():
                operation["security"] = [{name: []} for name in _SCHEMES]
