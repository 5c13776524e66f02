"""How fast explanations are: explain vs predict vs LIME in-process, and explained vs plain HTTP.

In-process, on one torch thread (as the service runs): the median time per 20 Newsgroups test
post of `predict(text)` and of `predict(text, explain=True)` (10 terms), in alternating blocks so
background load hits both alike; and LIME's `LimeTextExplainer.explain_instance` with its default
5,000 samples on a few posts, over the same `predict_proba`. Over HTTP, one connection to
`textclf serve` (the default process scorer): p50 of a one-text request with `"explain": true`
and of the same request without it, alternating.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import Result, Table, Target, default_model, load_splits, percentile, step

NAME = "explain_speed"
EXPLAIN_MS_LIMIT = 1.0  # median per text in-process, one core
HTTP_P50_MS_LIMIT = 5.0  # an explained one-text request at one connection
_INPROCESS = {
    "what": "per text, in-process, 1 torch thread",
    "median_ms": "median ms",
    "p90_ms": "p90 ms",
    "vs_predict": "x predict",
    "n": "texts",
}
_HTTP = {"what": "one-text request, one connection", "p50_ms": "p50 ms", "p99_ms": "p99 ms"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--texts", type=int, default=1000, help="test posts timed in-process")
    parser.add_argument("--lime-texts", type=int, default=3, help="posts LIME explains")
    parser.add_argument("--requests", type=int, default=1000, help="HTTP requests of each kind")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--retrain", action="store_true", help="ignore the cached default model")


def run(args: argparse.Namespace) -> Result:
    import torch

    import textclf

    n_texts, n_requests = (100, 100) if args.quick else (args.texts, args.requests)
    n_lime = 1 if args.quick else args.lime_texts
    path, _ = default_model("kept", retrain=args.retrain)
    torch.set_num_threads(1)
    predictor = textclf.load(path, threads=1)
    texts = load_splits("kept").test.texts[:n_texts]
    with step(f"predict vs explain on {len(texts)} test posts"):
        plain, explained = _alternate(
            texts,
            predictor.predict,
            lambda text: predictor.predict(text, explain=True),
        )
    with step(f"LIME (5,000 samples) on {n_lime} posts"):
        lime = _lime_times(predictor, texts[:n_lime])
    rows = [
        _row("textclf predict", plain, plain),
        _row("textclf predict(explain=True), exact", explained, plain),
        _row("LIME explain_instance, 5,000 samples", lime, plain),
    ]
    with step(f"HTTP: {n_requests} explained and {n_requests} plain one-text requests"):
        http_rows = _http_rows(path, texts, n_requests)
    tables = [
        Table("explanations in-process (20 Newsgroups test posts)", _INPROCESS, rows),
        Table("explanations over HTTP, textclf serve (process scorer)", _HTTP, http_rows),
    ]
    targets = [
        Target(
            "explain median ms per text, in-process", rows[1]["median_ms"], EXPLAIN_MS_LIMIT, "<="
        ),
        Target(
            "explained one-text request p50 ms", http_rows[0]["p50_ms"], HTTP_P50_MS_LIMIT, "<="
        ),
    ]
    details = {"texts": len(texts), "lime_texts": n_lime, "requests": n_requests}
    return Result(NAME, tables, targets, details)


def _alternate(
    texts: list[str], first: Callable[[str], Any], second: Callable[[str], Any]
) -> tuple[list[float], list[float]]:
    """Per-text seconds of each function, in alternating blocks of 50 texts."""
    first(texts[0]), second(texts[0])
    a: list[float] = []
    b: list[float] = []
    for start in range(0, len(texts), 50):
        block = texts[start : start + 50]
        a += _per_call(first, block)
        b += _per_call(second, block)
    return a, b


def _per_call(fn: Callable[[Any], Any], items: list[Any]) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return times


def _lime_times(predictor: Any, texts: list[str]) -> list[float]:
    from lime.lime_text import LimeTextExplainer

    explainer = LimeTextExplainer(class_names=list(predictor.labels), random_state=0)
    return _per_call(
        lambda text: explainer.explain_instance(text, predictor.predict_proba, num_features=10),
        texts,
    )


def _row(what: str, times: list[float], baseline: list[float]) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "what": what,
        "median_ms": median * 1000,
        "p90_ms": percentile(times, 90) * 1000,
        "vs_predict": median / statistics.median(baseline),
        "n": len(times),
    }


def _http_rows(path: Any, texts: list[str], n_requests: int) -> list[dict[str, Any]]:
    import httpx

    from bench.servers import serve
    from service.settings import Settings

    # The server refuses posts over its text limit (one 160,000-character test post): time the rest.
    limit = Settings.model_fields["max_text_chars"].default
    texts = [text for text in texts if len(text) <= limit]
    explained: list[float] = []
    plain: list[float] = []
    with serve("textclf", model=path) as server, httpx.Client(base_url=server.url) as http:
        bodies = [{"texts": [texts[i % len(texts)]]} for i in range(n_requests)]

        def post(body: dict[str, Any]) -> None:
            http.post("/v1/predict", json=body).raise_for_status()

        post({**bodies[0], "explain": True})
        for start in range(0, n_requests, 50):
            block = bodies[start : start + 50]
            explained += _per_call(post, [{**body, "explain": True} for body in block])
            plain += _per_call(post, block)
    return [
        {"what": "explain: true", **_percentiles(explained)},
        {"what": "plain", **_percentiles(plain)},
    ]


def _percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(times, 50) * 1000, "p99_ms": percentile(times, 99) * 1000}
