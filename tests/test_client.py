"""textclf.Client and AsyncClient: against a real server, and against scripted transports for the
retry and error paths."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.scoring import ThreadScorer
from service.settings import Settings
from service.testing import LiveServer
from textclf.client import (
    APIError,
    AsyncClient,
    AuthenticationError,
    Client,
    ClientError,
    ConnectionFailed,
    RequestTimeout,
)
from textclf.predictor import Predictor
from textclf.schemas import Health, Prediction, PredictResponse

TEXTS = ["the rocket reached orbit", "a home run in the ninth inning", "shading polygons in OpenGL"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def settings(trained_model_dir: Path) -> Settings:
    return Settings(model_path=trained_model_dir, api_key=None, max_texts=8, torch_threads=None)


@pytest.fixture(scope="module")
def server(settings: Settings, predictor: Predictor) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, scorer=ThreadScorer(predictor))) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- against a real server --------------------------------------------------------------------


def test_predict_one_text_equals_the_in_process_model(client: Client, predictor: Predictor) -> None:
    prediction = client.predict(TEXTS[0], top_k=2)

    assert isinstance(prediction, Prediction)
    assert prediction == predictor.predict(TEXTS[0], top_k=2)


def test_predict_a_list_keeps_order(client: Client, predictor: Predictor) -> None:
    assert client.predict(TEXTS) == predictor.predict(TEXTS)
    assert client.predict(tuple(TEXTS), top_k=3) == predictor.predict(TEXTS, top_k=3)


def test_predict_response_names_the_model(client: Client, predictor: Predictor) -> None:
    response = client.predict_response(TEXTS, top_k=2)

    assert isinstance(response, PredictResponse)
    assert response.model == predictor.ref
    assert response.predictions == predictor.predict(TEXTS, top_k=2)


def test_model_info_health_and_ready(client: Client, predictor: Predictor) -> None:
    assert client.model_info() == predictor.info
    assert client.health() == Health(status="ok")
    assert client.ready() is True


def test_server_errors_carry_the_servers_message(client: Client) -> None:
    with pytest.raises(APIError) as info:
        client.predict(TEXTS, top_k=0)

    error = info.value
    assert not isinstance(error, AuthenticationError)
    assert (error.status_code, error.type) == (422, "validation_error")
    assert "top_k: Input should be greater than or equal to 1" in error.message
    assert error.errors[0]["loc"] == ["top_k"]
    assert "top_k: Input should be greater" in str(error)


def test_too_many_texts_says_how_many_are_allowed(client: Client) -> None:
    with pytest.raises(APIError, match="at most 8 texts per request, got 9"):
        client.predict(["text"] * 9)


def test_client_is_reusable_after_an_error(client: Client) -> None:
    with pytest.raises(APIError):
        client.predict([])
    assert client.predict("the rocket reached orbit").label


@pytest.mark.anyio
async def test_async_client(server: LiveServer, predictor: Predictor) -> None:
    async with AsyncClient(server.url) as client:
        assert await client.predict(TEXTS[0]) == predictor.predict(TEXTS[0])
        assert await client.predict(TEXTS, top_k=2) == predictor.predict(TEXTS, top_k=2)
        assert (await client.predict_response(TEXTS)).model == predictor.ref
        assert await client.model_info() == predictor.info
        assert await client.health() == Health(status="ok")
        assert await client.ready() is True
        with pytest.raises(APIError, match="at least 1 item"):
            await client.predict([])


def test_predict_explain_equals_the_in_process_model(
    client: Client, server: LiveServer, predictor: Predictor
) -> None:
    explained = client.predict(TEXTS[0], explain=True, explain_terms=4)
    assert explained == predictor.predict(TEXTS[0], explain=True, explain_terms=4)
    assert explained.explanation is not None and len(explained.explanation) <= 4
    assert client.predict(TEXTS[0]).explanation is None


@pytest.mark.anyio
async def test_async_client_explains(server: LiveServer, predictor: Predictor) -> None:
    async with AsyncClient(server.url) as client:
        explained = await client.predict(TEXTS, explain=True, explain_terms=2)
    assert explained == predictor.predict(TEXTS, explain=True, explain_terms=2)


def test_close_and_context_manager(server: LiveServer) -> None:
    client = Client(server.url)
    client.predict("the rocket reached orbit")
    client.close()

    with pytest.raises(ClientError):
        client.predict("after close")


def test_rides_through_a_server_restart(settings: Settings, predictor: Predictor) -> None:
    """The server goes down between two calls; the second call retries until it is back."""
    down = threading.Event()
    failures = 0

    class Watching(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal failures
            try:
                return super().handle_request(request)
            except httpx.TransportError:
                failures += 1
                down.set()
                raise

    first = LiveServer(create_app(settings, scorer=ThreadScorer(predictor))).start()
    second = LiveServer(create_app(settings, scorer=ThreadScorer(predictor)), port=first.port)

    def restart_once_a_call_has_failed() -> None:
        down.wait()
        second.start()

    with Client(first.url, retries=12, backoff=0.01, transport=Watching()) as client:
        assert client.predict("before the restart").label  # leaves a kept-alive connection
        first.stop()
        thread = threading.Thread(target=restart_once_a_call_has_failed)
        thread.start()
        try:
            prediction = client.predict("during the restart")
        finally:
            down.set()
            thread.join()
            second.stop()

    assert failures >= 1
    assert prediction == predictor.predict("during the restart")


# --- retries and errors, with scripted transports ---------------------------------------------


class Scripted(httpx.MockTransport):
    """Answers each request with the next step: a status code, or an exception to raise."""

    def __init__(self, *steps: int | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        if step == 200:
            body = {"model": {"name": "m", "version": "1"}, "predictions": [_PREDICTION]}
            return httpx.Response(200, json=body)
        error = {"type": "not_ready", "message": f"status {step}", "errors": []}
        return httpx.Response(step, json={"error": error})


_PREDICTION = {"label": "a", "score": 0.9, "top_k": [{"label": "a", "score": 0.9}]}


def _client(transport: httpx.MockTransport, **kwargs: object) -> Client:
    return Client("http://textclf.test", transport=transport, backoff=0, **kwargs)  # type: ignore[arg-type]


def test_connection_to_a_closed_port_fails_after_retries() -> None:
    attempts = 0

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return super().handle_request(request)

    url = f"http://127.0.0.1:{_closed_port()}"
    with Client(url, retries=2, backoff=0.01, transport=Counting()) as client:
        with pytest.raises(ConnectionFailed, match="after 3 attempts") as info:
            client.predict("hello")
        assert client.ready() is False

    assert attempts == 3 + 1  # three for predict, one for the readiness probe (never retried)
    assert url in str(info.value)


@pytest.mark.anyio
async def test_async_connection_to_a_closed_port_fails_after_retries() -> None:
    async with AsyncClient(f"http://127.0.0.1:{_closed_port()}", retries=1, backoff=0) as client:
        with pytest.raises(ConnectionFailed, match="after 2 attempts"):
            await client.health()
        assert await client.ready() is False


def test_503_is_retried_until_it_succeeds() -> None:
    transport = Scripted(503, 503, 200)
    with _client(transport, retries=3) as client:
        assert client.predict("x").label == "a"
    assert len(transport.requests) == 3


def test_503_after_the_last_retry_raises_the_servers_error() -> None:
    transport = Scripted(503, 503)
    with _client(transport, retries=1) as client, pytest.raises(APIError) as info:
        client.predict("x")
    assert (info.value.status_code, info.value.message) == (503, "status 503")
    assert len(transport.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 422, 500])
def test_other_errors_are_not_retried(status: int) -> None:
    transport = Scripted(status)
    with _client(transport) as client, pytest.raises(APIError) as info:
        client.predict("x")
    assert info.value.status_code == status
    assert isinstance(info.value, AuthenticationError) == (status == 401)
    assert len(transport.requests) == 1


def test_dropped_connections_are_retried() -> None:
    transport = Scripted(
        httpx.ConnectError("refused"), httpx.RemoteProtocolError("server disconnected"), 200
    )
    with _client(transport) as client:
        assert client.predict(["x"])[0].label == "a"
    assert len(transport.requests) == 3


def test_read_timeout_is_not_retried() -> None:
    transport = Scripted(httpx.ReadTimeout("slow"))
    with _client(transport) as client, pytest.raises(RequestTimeout):
        client.predict("x")
    assert len(transport.requests) == 1


def test_ready_is_false_on_503_without_retrying() -> None:
    transport = Scripted(503)
    with _client(transport) as client:
        assert client.ready() is False
    assert len(transport.requests) == 1


def test_non_textclf_error_bodies_still_raise_api_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(502, text="<html>Bad Gateway</html>"))
    with _client(transport) as client, pytest.raises(APIError) as info:
        client.health()
    assert info.value.status_code == 502
    assert info.value.type == "http_error"
    assert "Bad Gateway" in info.value.message


def test_unexpected_success_body_is_a_client_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"hello": "world"}))
    with _client(transport) as client, pytest.raises(ClientError, match="is this a textclf server"):
        client.model_info()


def test_requests_carry_the_api_key_and_json_body() -> None:
    transport = Scripted(200)
    with _client(transport, api_key="s3cret") as client:
        client.predict(["one", "two"], top_k=2)

    (request,) = transport.requests
    assert request.url == "http://textclf.test/v1/predict"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.read() == b'{"texts":["one","two"],"top_k":2}'


def test_base_url_with_a_path_prefix() -> None:
    transport = Scripted(200)
    with Client("http://gw.test/textclf/", transport=transport) as client:
        client.predict("x")
    assert transport.requests[0].url == "http://gw.test/textclf/v1/predict"


@pytest.mark.parametrize(("option", "value"), [("retries", -1), ("backoff", -0.1)])
def test_bad_options_are_refused(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        Client(**{option: value})  # type: ignore[arg-type]


def test_import_does_not_load_torch() -> None:
    code = "import sys, textclf.client; print(sorted({'torch', 'sklearn'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_exported_from_the_package() -> None:
    import textclf

    assert textclf.Client is Client
    assert textclf.AsyncClient is AsyncClient
