"""Property-based fuzzing of the HTTP API from its own OpenAPI document, with schemathesis.

Every operation the server documents gets generated requests, valid ones ("positive") and ones
that break the schema ("negative"), sent over real HTTP to the session's server. Each answer must
not be a 5xx, must have a status code, content type and body the document declares, a valid
request must be accepted (2xx: every limit the server enforces is in the document) and an
invalid one refused with a 4xx. Both the open server and one with an API key are fuzzed, the
latter with the key sent as its document declares. Generation is derandomized, so CI sees the
same requests every run. The number of requests sent is printed at the end of the module.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.testing import LiveServer
from textclf.schemas import ErrorResponse

from .conftest import API_KEY

# Requests per generation mode for operations that take input; the rest have a single valid
# request. POST /v1/predict alone gets 2 x 600 = 1,200 requests.
EXAMPLES_WITH_INPUT = 600
EXAMPLES_WITHOUT_INPUT = 5
# The Open Inference Protocol's routes (six with input, all 404 but for the served name, their
# bodies validated by the same code as the unit tests in test_open_inference.py): a few each,
# so that they add seconds, not minutes.
EXAMPLES_V2 = 10
MIN_REQUESTS = 1_000

Tally = Counter[tuple[str, str, int]]


@pytest.fixture(scope="module", params=["open", "keyed"])
def target(
    request: pytest.FixtureRequest,
) -> tuple[LiveServer, schemathesis.BaseSchema, dict[str, str]]:
    """A server, its own OpenAPI document, and the headers a client of it sends."""
    keyed = request.param == "keyed"
    server: LiveServer = request.getfixturevalue("keyed_server" if keyed else "server")
    api = schemathesis.openapi.from_dict(cast(FastAPI, server.app).openapi())
    return server, api, {"Authorization": f"Bearer {API_KEY}"} if keyed else {}


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """(operation, mode, status) -> requests sent; printed after the module's tests."""
    counts: Tally = Counter()
    yield counts
    lines = [f"schemathesis: {sum(counts.values())} fuzzed requests"]
    lines += [f"  {op} {mode} -> {status}: {n}" for (op, mode, status), n in sorted(counts.items())]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines))


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_every_operation_answers_as_documented(
    target: tuple[LiveServer, schemathesis.BaseSchema, dict[str, str]],
    tally: Tally,
    mode: GenerationMode,
) -> None:
    server, api, headers = target
    failures: list[str] = []
    for result in api.get_all_operations():
        operation = result.ok()
        # The API-key headers a keyed document declares are sent as given, not generated.
        params = [p for p in operation.iter_parameters() if p.location != "header"]
        takes_input = bool(params) or bool(list(operation.body))
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to get wrong in a request without parameters or body
        breakable = bool(list(operation.body)) or any(p.location != "path" for p in params)
        if mode is GenerationMode.NEGATIVE and not breakable:
            # A schema-breaking path segment (over maxLength) is one a URL can seldom carry:
            # hypothesis finds too few to run. Wrong names and versions are tested by hand
            # (tests/service/test_open_inference.py) and positive fuzzing covers the routes.
            continue
        examples = EXAMPLES_WITH_INPUT if takes_input else EXAMPLES_WITHOUT_INPUT
        if operation.path.startswith("/v2/"):
            examples = min(examples, EXAMPLES_V2)
        try:
            label = f"{operation.label} ({'keyed' if headers else 'open'})"
            _fuzz(operation, label, mode, server.url, headers, examples, tally)
        except Exception as exc:  # collect, so one report shows every failing operation
            failures.append(f"{operation.label} ({mode.value}):\n{exc}")

    assert not failures, "\n\n".join(failures)
    sent = sum(n for (_, m, _), n in tally.items() if m == mode.value)
    assert sent >= MIN_REQUESTS // 2, f"only {sent} {mode.value} requests were generated"


def _fuzz(
    operation: Any,
    label: str,
    mode: GenerationMode,
    url: str,
    headers: dict[str, str],
    examples: int,
    tally: Tally,
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        tally[(label, mode.value, response.status_code)] += 1
        # positive_data_acceptance explicitly: schema-valid requests must get a 2xx.
        case.validate_response(
            response, headers=headers, additional_checks=[positive_data_acceptance]
        )

    run()


# Bodies a schema-driven generator seldom writes: broken encodings, JSON that strains the parser.
HOSTILE = {
    "invalid UTF-8": b'{"texts": ["\xff\xfe"]}',
    "lone surrogate escape": b'{"texts": ["\\ud800"]}',
    "10,000 nested arrays": b'{"texts": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "a 5,000-digit top_k": b'{"texts": ["a"], "top_k": 1' + b"0" * 5_000 + b"}",
    "NaN top_k": b'{"texts": ["a"], "top_k": NaN}',
    "byte order mark": b'\xef\xbb\xbf{"texts": ["a"]}',
    "trailing garbage": b'{"texts": ["a"]} {"texts": ["b"]}',
    "a list of requests": b'[{"texts": ["a"]}]',
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_json_gets_a_422_that_says_why(http: httpx.Client, body: bytes) -> None:
    response = http.post("/v1/predict", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422, response.text
    error = ErrorResponse.model_validate_json(response.content).error
    assert error.type == "validation_error" and error.message
    assert http.post("/v1/predict", json={"texts": ["still serving"]}).status_code == 200
