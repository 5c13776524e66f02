"""Python client for the textclf service: `Client` (blocking) and `AsyncClient`, both on httpx.

    with textclf.Client("http://127.0.0.1:8000") as client:
        client.predict("The shuttle launch was delayed")          # -> Prediction
        client.predict(["first text", "second text"], top_k=3)    # -> list[Prediction]

Both return the same schema classes as `textclf.load(dir).predict`, so code can move between an
in-process model and the service unchanged. As in httpx's own `_client.py`, one base class builds
every request and parses every response; the two subclasses only differ in how they send and
sleep. This module imports httpx and the schemas only: no torch, no scikit-learn.

Every request the client makes is idempotent (reads, and inference without side effects), so a
request is retried, with exponential backoff, when the connection fails or the server answers 503,
even if it might have reached the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

import httpx
from pydantic import BaseModel, ValidationError

from textclf.schemas import ErrorResponse, Health, ModelInfo, Prediction, PredictResponse

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "RequestTimeout",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_USER_AGENT = "textclf-client/0.1"
# Failures where the server cannot have started to answer, or the connection died (e.g. a server
# restart closing a kept-alive connection): safe to retry because every call is idempotent.
_RETRY_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
_RETRY_STATUS = 503

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class ClientError(Exception):
    """Base class of every error the client raises."""


class APIError(ClientError):
    """The server answered with an error status; `message` is the server's own explanation."""

    def __init__(
        self,
        status_code: int,
        type: str,
        message: str,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {type}: {message}")
        self.status_code = status_code
        self.type = type
        self.message = message
        self.errors = errors or []


class AuthenticationError(APIError):
    """401: the server needs an API key and got none or a wrong one."""


class ConnectionFailed(ClientError):
    """The server could not be reached, even after retrying."""


class RequestTimeout(ClientError):
    """The server accepted the request but did not answer within the timeout."""


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One API call: what to send, and how to turn the response into a value."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    retry: bool = True


class _BaseClient:
    """Request building, response parsing and retry policy, shared by both clients."""

    def __init__(
        self,
        base_url: str | httpx.URL,
        *,
        timeout: float | httpx.Timeout,
        api_key: str | None,
        retries: int,
        backoff: float,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        if backoff < 0:
            raise ValueError(f"backoff must be 0 or more, got {backoff}")
        self.base_url = httpx.URL(str(base_url).rstrip("/") + "/")
        self.retries = retries
        self.backoff = backoff
        self._timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if api_key is not None:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.base_url)!r})"

    # --- calls ------------------------------------------------------------------------------

    def _predict_call(
        self, texts: Sequence[str], top_k: int, explain: bool, explain_terms: int
    ) -> _Call[PredictResponse]:
        payload: dict[str, Any] = {
            "texts": [texts] if isinstance(texts, str) else list(texts),
            "top_k": top_k,
        }
        if explain:  # otherwise the body stays what it always was
            payload.update(explain=True, explain_terms=explain_terms)
        return _Call("POST", "v1/predict", _parser(PredictResponse), json=payload)

    def _model_call(self) -> _Call[ModelInfo]:
        return _Call("GET", "v1/model", _parser(ModelInfo))

    def _health_call(self) -> _Call[Health]:
        return _Call("GET", "healthz", _parser(Health))

    def _ready_call(self) -> _Call[bool]:
        # A probe wants the current answer, not a retried one: 503 simply means "not ready".
        return _Call("GET", "readyz", _parse_ready, retry=False)

    @staticmethod
    def _unwrap(response: PredictResponse, single: bool) -> Prediction | list[Prediction]:
        return response.predictions[0] if single else response.predictions

    def _check_open(self, closed: bool) -> None:
        if closed:
            raise ClientError(f"{self!r} is closed; create a new client")

    # --- retry policy -----------------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        return float(self.backoff * 2**attempt)

    def _retry_after_error(self, call: _Call[Any], attempt: int, exc: httpx.HTTPError) -> float:
        """Seconds to wait before retrying after `exc`, or raise the error to give up with."""
        if isinstance(exc, _RETRY_ERRORS):
            if call.retry and attempt < self.retries:
                return self._delay(attempt)
            tries = f" after {attempt + 1} attempts" if attempt else ""
            reason = str(exc) or type(exc).__name__
            raise ConnectionFailed(
                f"cannot reach the textclf service at {self.base_url}{tries}: {reason}"
            ) from exc
        if isinstance(exc, httpx.TimeoutException):
            raise RequestTimeout(
                f"{call.method} {self.base_url}{call.path} timed out ({self._timeout}s): {exc}"
            ) from exc
        raise ClientError(f"{call.method} {self.base_url}{call.path} failed: {exc}") from exc

    def _retry_after_response(
        self, call: _Call[Any], attempt: int, response: httpx.Response
    ) -> float | None:
        """Seconds to wait before retrying after this response, or None to use it."""
        if response.status_code == _RETRY_STATUS and call.retry and attempt < self.retries:
            return self._delay(attempt)
        return None


def _parser(model: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        _raise_for_status(response)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ClientError(
                f"unexpected response from {response.request.url} (is this a textclf server?): "
                f"expected {model.__name__}: {exc}"
            ) from None

    return parse


def _parse_ready(response: httpx.Response) -> bool:
    if response.status_code == _RETRY_STATUS:
        return False
    _raise_for_status(response)
    return True


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    try:
        detail = ErrorResponse.model_validate_json(response.content).error
        type_, message, errors = detail.type, detail.message, detail.errors
    except ValidationError:  # not our JSON: a proxy's error page, say
        type_, message, errors = "http_error", _excerpt(response), []
    error = AuthenticationError if status == 401 else APIError
    raise error(status, type_, message, errors)


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip()
    return f"HTTP {response.status_code} {response.reason_phrase}" + (
        f": {text[:200]}" if text else ""
    )


def _as_texts(text_or_texts: str | Sequence[str]) -> tuple[Sequence[str], bool]:
    if isinstance(text_or_texts, str):
        return [text_or_texts], True
    return text_or_texts, False


class Client(_BaseClient):
    """Blocking client. Use as a context manager, or call `close()` when done."""

    def __init__(
        self,
        base_url: str | httpx.URL = DEFAULT_BASE_URL,
        *,
        timeout: float | httpx.Timeout = 10.0,
        api_key: str | None = None,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, timeout=timeout, api_key=api_key, retries=retries, backoff=backoff
        )
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=self._headers, transport=transport
        )

    @overload
    def predict(  # type: ignore[overload-overlap]
        self, text_or_texts: str, top_k: int = 1, *, explain: bool = False, explain_terms: int = 10
    ) -> Prediction: ...
    @overload
    def predict(
        self,
        text_or_texts: Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> list[Prediction]: ...

    def predict(
        self,
        text_or_texts: str | Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> Prediction | list[Prediction]:
        """A string gives one Prediction; a list gives a list, in the same order. With
        `explain`, each carries its `explanation` (`explain_terms` terms, 1 to 100)."""
        texts, single = _as_texts(text_or_texts)
        response = self.predict_response(
            texts, top_k, explain=explain, explain_terms=explain_terms
        )
        return self._unwrap(response, single)

    def predict_response(
        self,
        texts: Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> PredictResponse:
        """The full response, including which model version answered."""
        return self._send(self._predict_call(texts, top_k, explain, explain_terms))

    def model_info(self) -> ModelInfo:
        return self._send(self._model_call())

    def health(self) -> Health:
        return self._send(self._health_call())

    def ready(self) -> bool:
        """Whether the server is up with its model loaded; False if it cannot be reached."""
        try:
            return self._send(self._ready_call())
        except ConnectionFailed:
            return False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: _Call[T]) -> T:
        self._check_open(self._http.is_closed)
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, json=call.json)
            except httpx.HTTPError as exc:
                delay = self._retry_after_error(call, attempt, exc)
            else:
                retry_in = self._retry_after_response(call, attempt, response)
                if retry_in is None:
                    return call.parse(response)
                delay = retry_in
            time.sleep(delay)
            attempt += 1


class AsyncClient(_BaseClient):
    """Asyncio client. Use `async with`, or `await aclose()` when done."""

    def __init__(
        self,
        base_url: str | httpx.URL = DEFAULT_BASE_URL,
        *,
        timeout: float | httpx.Timeout = 10.0,
        api_key: str | None = None,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, timeout=timeout, api_key=api_key, retries=retries, backoff=backoff
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers=self._headers, transport=transport
        )

    @overload
    async def predict(  # type: ignore[overload-overlap]
        self, text_or_texts: str, top_k: int = 1, *, explain: bool = False, explain_terms: int = 10
    ) -> Prediction: ...
    @overload
    async def predict(
        self,
        text_or_texts: Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> list[Prediction]: ...

    async def predict(
        self,
        text_or_texts: str | Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> Prediction | list[Prediction]:
        """A string gives one Prediction; a list gives a list, in the same order. With
        `explain`, each carries its `explanation` (`explain_terms` terms, 1 to 100)."""
        texts, single = _as_texts(text_or_texts)
        response = await self.predict_response(
            texts, top_k, explain=explain, explain_terms=explain_terms
        )
        return self._unwrap(response, single)

    async def predict_response(
        self,
        texts: Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> PredictResponse:
        """The full response, including which model version answered."""
        return await self._send(self._predict_call(texts, top_k, explain, explain_terms))

    async def model_info(self) -> ModelInfo:
        return await self._send(self._model_call())

    async def health(self) -> Health:
        return await self._send(self._health_call())

    async def ready(self) -> bool:
        """Whether the server is up with its model loaded; False if it cannot be reached."""
        try:
            return await self._send(self._ready_call())
        except ConnectionFailed:
            return False

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: _Call[T]) -> T:
        self._check_open(self._http.is_closed)
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, json=call.json)
            except httpx.HTTPError as exc:
                delay = self._retry_after_error(call, attempt, exc)
            else:
                retry_in = self._retry_after_response(call, attempt, response)
                if retry_in is None:
                    return call.parse(response)
                delay = retry_in
            await asyncio.sleep(delay)
            attempt += 1
