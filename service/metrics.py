"""Prometheus metrics: one registry per app, and a pure-ASGI middleware that times every request.

Each app gets its own `CollectorRegistry`, so several apps in one process (tests, reloads) never
collide on metric names. Labelled children are cached per label tuple: `Counter.labels(...)` takes
a lock and validates its arguments, which is a measurable share of a sub-millisecond request.

With `textclf serve --workers N` the metrics are the whole service's, whichever worker answers the
scrape: the supervisor (`service.supervisor`) gives each run a fresh `PROMETHEUS_MULTIPROC_DIR`
before any worker imports prometheus_client, every worker writes its values there, and /metrics
sums them (`prometheus_client.multiprocess.MultiProcessCollector`). Counters and histograms are
totals over all workers; the one gauge, `textclf_model_info`, is per worker (a `pid` label,
`liveall`: a worker that exits drops out), so a scrape shows which version each worker serves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textclf.schemas import ModelRef

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    """The service's metrics and cheap ways to update them. `multiprocess_dir`: the
    `PROMETHEUS_MULTIPROC_DIR` this worker writes to, so `render` reports every worker's."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposed = self.registry
        if multiprocess_dir is not None:
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed, path=str(multiprocess_dir))
        self.requests = Counter(
            "textclf_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "textclf_http_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its response.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "textclf_predictions",
            "Texts classified, by predicted (top-1) label.",
            ["label"],
            registry=self.registry,
        )
        self.batch_texts = Histogram(
            "textclf_batch_texts",
            "Texts per predictor call: above 1 means concurrent requests were micro-batched.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        # A gauge, not an Info (which multiprocess mode cannot store); same sample name.
        self.model = Gauge(
            "textclf_model_info",
            "The model being served: 1 for the name and version served now (0 for one served "
            "before a reload). With several workers, one per worker (`pid` label).",
            ["name", "version"],
            multiprocess_mode="liveall",
            registry=self.registry,
        )
        self._model_labels: tuple[str, str] | None = None
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._label_children: dict[str, Any] = {}

    def set_model(self, model: ModelRef) -> None:
        labels = (model.name, model.version)
        if self._model_labels is not None and self._model_labels != labels:
            # Zero first: multiprocess mode keeps a removed child's last value in its file.
            self.model.labels(*self._model_labels).set(0)
            self.model.remove(*self._model_labels)
        self.model.labels(*labels).set(1)
        self._model_labels = labels

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_labels(self, labels: Iterable[str]) -> None:
        """Count predictions by their top label."""
        for label in labels:
            child = self._label_children.get(label)
            if child is None:
                child = self._label_children[label] = self.predictions.labels(label)
            child.inc()

    def observe_batch(self, n_texts: int) -> None:
        self.batch_texts.observe(n_texts)

    def render(self) -> bytes:
        return generate_latest(self._exposed)


class MetricsMiddleware:
    """Counts and times every HTTP request by route *template* (not raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app raises before responding, the server answers 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(path, scope["method"], status, time.perf_counter() - start)
