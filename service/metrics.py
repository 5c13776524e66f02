"""Prometheus metrics: one registry per app, and a pure-ASGI middleware that times every request.

Each app gets its own `CollectorRegistry`, so several apps in one process (tests, reloads) never
collide on metric names. The per-request figures are kept in plain Python structures and handed
to Prometheus only when scraped (see `Metrics`).

Multi-worker note: each uvicorn worker process keeps its own counters and answers /metrics with
them. Prometheus multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`) is not wired up; scrape each
worker, or run one worker per container, to get whole-service totals.
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textclf.schemas import ModelRef

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    """The service's metrics and cheap ways to update them.

    The hot-path figures (requests, latencies, labels, batch sizes) are plain dicts and lists,
    updated without locks: every update runs on the event loop's thread (the thread batcher hands
    its results to the loop first). They become Prometheus metric families only when /metrics is
    scraped. prometheus_client's own `Counter.inc` and `Histogram.observe` take a lock each, and
    the histogram walks its buckets in Python: all of that was ~4% of a one-text request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._labels: dict[str, int] = {}
        self._batches = _Histogram(_BATCH_BUCKETS)
        self.registry.register(_Collector(self))
        self.model = Info("textclf_model", "The model being served.", registry=self.registry)

    def set_model(self, model: ModelRef) -> None:
        self.model.info({"name": model.name, "version": model.version})

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        histogram = self._latency.get((route, method))
        if histogram is None:
            histogram = self._latency[route, method] = _Histogram(_LATENCY_BUCKETS)
        histogram.observe(seconds)

    def observe_labels(self, labels: Iterable[str]) -> None:
        """Count predictions by their top label."""
        counts = self._labels
        for label in labels:
            counts[label] = counts.get(label, 0) + 1

    def observe_batch(self, n_texts: int) -> None:
        self._batches.observe(n_texts)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Histogram:
    """Per-bucket counts (not cumulative) and a sum; `bisect` finds the bucket in C."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        edges = [*(floatToGoString(b) for b in self.bounds), "+Inf"]
        return list(zip(edges, itertools.accumulate(self.counts), strict=True))


class _Collector(Collector):
    """Turns `Metrics`' plain figures into metric families at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        requests = CounterMetricFamily(
            "textclf_http_requests",
            "HTTP requests by route template, method and status code.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in list(m._requests.items()):
            requests.add_metric([route, method, str(status)], count)
        latency = HistogramMetricFamily(
            "textclf_http_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its response.",
            labels=["route", "method"],
        )
        for (route, method), histogram in list(m._latency.items()):
            latency.add_metric([route, method], histogram.buckets(), histogram.sum)
        predictions = CounterMetricFamily(
            "textclf_predictions", "Texts classified, by predicted (top-1) label.", labels=["label"]
        )
        for label, count in list(m._labels.items()):
            predictions.add_metric([label], count)
        batches = HistogramMetricFamily(
            "textclf_batch_texts",
            "Texts per predictor call: above 1 means concurrent requests were micro-batched.",
        )
        batches.add_metric([], m._batches.buckets(), m._batches.sum)
        yield from (requests, latency, predictions, batches)


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
