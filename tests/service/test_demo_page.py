"""The demo page and /docs in a real headless Chromium (Debian's, driven by Playwright), against
real uvicorn servers; every request that leaves 127.0.0.1 is blocked and recorded, and none may
be attempted."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from service.testing import LiveServer
from tests.service.conftest import API_KEY, LIMITS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
SPACE = (
    "NASA scheduled the shuttle launch for Tuesday. The orbiter will carry a satellite into low "
    "Earth orbit, and the astronauts will test the new rocket engines during the mission."
)
TIMEOUT_MS = 30_000

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (`make system-packages`)",
        allow_module_level=True,
    )


class Browsing:
    """A fresh browser context whose requests to anywhere but 127.0.0.1 are aborted and kept."""

    def __init__(self, browser: Browser) -> None:
        self.outside: list[str] = []
        self.context = browser.new_context(viewport={"width": 1000, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()

    def _route(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module: launching is the slow part."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browsing(browser: Browser) -> Iterator[Browsing]:
    session = Browsing(browser)
    yield session
    session.context.close()


def _classify(page: Page, text: str, *, ctrl_enter: bool = False) -> None:
    page.fill("#input", text)
    if ctrl_enter:
        page.press("#input", "Control+Enter")
    else:
        page.get_by_role("button", name="Classify").click()


def _error(page: Page) -> str:
    alert = page.locator("#error")
    alert.wait_for(state="visible")
    return str(alert.text_content())


def test_classifies_highlights_and_reports_errors(
    server: LiveServer, browsing: Browsing, tmp_path: Path
) -> None:
    page = browsing.page
    page.goto(f"{server.url}/")
    assert page.locator("#key-field").is_hidden()  # the open server needs no key
    assert page.locator("#model-name").text_content() == "test-model"

    _classify(page, SPACE)
    first = page.locator("#bars .bar.first")
    first.wait_for()
    assert first.get_attribute("data-label") == "sci.space"
    assert page.locator("#bars .bar").count() == 3  # top_k 5, the small model has 3 labels
    marks = page.locator("#text mark")
    assert marks.count() >= 1
    assert "weight" in str(marks.first.get_attribute("title"))
    assert page.locator("#text").text_content() == SPACE  # highlighting loses no character
    shot = tmp_path / "demo-page.png"
    page.screenshot(path=str(shot), full_page=True)
    (REPO / "test-output").mkdir(exist_ok=True)
    shutil.copy(shot, REPO / "test-output" / "demo-page.png")

    _classify(page, "   ")
    assert "text is empty" in _error(page)
    limit = LIMITS["max_text_chars"]
    assert isinstance(limit, int)
    _classify(page, "x" * (limit + 1))
    assert f"the limit is {limit}" in _error(page)  # the server's 422 message, as it sent it
    _classify(page, "The pitcher threw a curveball in the ninth inning", ctrl_enter=True)
    page.locator("#error").wait_for(state="hidden")
    page.locator('#bars .bar.first[data-label="rec.sport.baseball"]').wait_for()
    assert browsing.outside == []


def test_astral_characters_keep_highlights_on_their_words(
    server: LiveServer, browsing: Browsing
) -> None:
    """Spans count code points; emoji are two UTF-16 units in JS, so a naive page would shift
    every highlight after one."""
    page = browsing.page
    page.goto(f"{server.url}/")
    text = "\U0001f680\U0001f680 shuttle orbit \U0001f30d launch"
    _classify(page, text)
    page.locator("#bars .bar.first").wait_for()
    assert page.locator("#text").text_content() == text
    marked = page.locator("#text mark").all_text_contents()
    # Shifted spans would cut words ("huttle o"); terms may be single words or pairs.
    assert marked and all(set(m.split()) <= {"shuttle", "orbit", "launch"} for m in marked)


def test_keyed_server_asks_for_the_key(keyed_server: LiveServer, browsing: Browsing) -> None:
    page = browsing.page
    page.goto(f"{keyed_server.url}/")
    assert page.locator("#key-field").is_visible()
    _classify(page, SPACE)
    assert "this endpoint needs an API key" in _error(page)
    page.fill("#key", "not-the-key")
    _classify(page, SPACE)
    assert "the API key is not valid" in _error(page)
    page.fill("#key", API_KEY)
    _classify(page, SPACE)
    page.locator('#bars .bar.first[data-label="sci.space"]').wait_for()
    assert page.locator("#error").is_hidden()
    assert browsing.outside == []


def test_docs_load_without_the_internet(server: LiveServer, browsing: Browsing) -> None:
    """Swagger UI from the server itself renders the operations; /redoc is off (ReDoc fetches
    its logo from a CDN whatever it is told)."""
    page = browsing.page
    page.goto(f"{server.url}/docs")
    page.locator(".swagger-ui .opblock-summary-path", has_text="/v1/predict").first.wait_for()
    page.locator(".swagger-ui .opblock-summary-path", has_text="/v1/model").first.wait_for()
    assert browsing.outside == []
    response = page.goto(f"{server.url}/redoc")
    assert response is not None and response.status == 404
