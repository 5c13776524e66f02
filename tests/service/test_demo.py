"""Without a browser: `/` and `/docs` reference nothing outside the server, their assets load, the
page is told what it needs to know, and `/v1/model` reports the calibration numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from fastapi.openapi.docs import get_swagger_ui_html

from service.demo import _script_json

# Any absolute URL in an attribute or a CSS url(): the page and the docs must need none.
EXTERNAL = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//"""
)


def test_the_demo_page_is_self_contained(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert EXTERNAL.search(page.text) is None
    assert "<textarea" in page.text and ">Classify</button>" in page.text
    config = json.loads(re.search(r"const CONFIG = (\{.*?\}) \|\|", page.text).group(1))  # type: ignore[union-attr]
    assert config["needsKey"] is False
    assert config["model"]["name"] == "test-model"
    assert config["model"]["version"] == http.get("/v1/model").json()["version"]
    assert "/" not in http.get("/openapi.json").json()["paths"]


def test_the_keyed_page_asks_for_a_key_and_is_not_guarded(keyed_http: httpx.Client) -> None:
    page = keyed_http.get("/")  # no key sent: the page itself is open, /v1/ is not
    assert page.status_code == 200
    assert '"needsKey": true' in page.text
    assert keyed_http.get("/v1/model").status_code == 401


def test_config_json_cannot_close_the_script() -> None:
    text = _script_json({"name": "</script><script>alert(1)</script>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script>&"}


def test_docs_load_their_assets_from_the_server(http: httpx.Client) -> None:
    docs = http.get("/docs")
    assert docs.status_code == 200
    assert EXTERNAL.search(docs.text) is None
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", docs.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert http.get(asset).status_code == 200, asset
    assert http.get("/redoc").status_code == 404
    # The check would catch FastAPI's default page, which loads Swagger UI from a CDN.
    default = get_swagger_ui_html(openapi_url="/openapi.json", title="t").body
    assert EXTERNAL.search(bytes(default).decode())


def test_model_info_reports_ece_before_and_after_temperature(
    http: httpx.Client, trained_model_dir: Path
) -> None:
    calibration = http.get("/v1/model").json()["metrics"]["test"]["calibration"]
    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    assert calibration == manifest["metrics"]["test"]["calibration"]
    assert {"ece", "ece_before_temperature", "temperature", "bins", "coverage"} <= set(calibration)
