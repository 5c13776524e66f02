"""`GET /`: a one-page demo of the API in a browser, with nothing loaded from outside the server.

The page (`service/static/demo.html`, inline CSS and JS, no build step) calls `POST /v1/predict`
like any client. What it cannot ask the API without a key, whether it needs one, it is told here:
the settings, the model's name and version and the text limit go into the page as JSON when it is
served. The key itself stays in the page's memory; the server never renders it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

_PAGE = "demo.html"
_CONFIG_SLOT = "/*TEXTCLF_CONFIG*/null"


def install_demo(app: FastAPI) -> None:
    """Serve the demo page at `/`, outside the OpenAPI document."""
    app.add_api_route(
        "/", demo_page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse
    )


async def demo_page(request: Request) -> HTMLResponse:
    state = request.app.state
    ref = state.model.scorer.ref
    config = {
        "needsKey": state.settings.api_key is not None,
        "model": {"name": ref.name, "version": ref.version},
        "maxTextChars": state.settings.max_text_chars,
    }
    return HTMLResponse(
        _template().replace(_CONFIG_SLOT, _script_json(config)),
        # The page is the same for every visitor but must not outlive a model reload in a cache.
        headers={"Cache-Control": "no-cache"},
    )


@cache
def _template() -> str:
    return files("service").joinpath("static", _PAGE).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: no `</script>` or `<!--` can close it early."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
