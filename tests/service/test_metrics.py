"""/metrics is Prometheus text that counts the requests just made."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from textclf.predictor import Predictor


def _samples(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _requests(route: str, method: str, status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"route": route, "method": method, "status": status}
    return ("textclf_http_requests_total", tuple(sorted(labels.items())))


def test_metrics_count_requests_by_route_and_status(http: httpx.Client) -> None:
    before = _samples(http)
    for _ in range(3):
        http.post("/v1/predict", json={"texts": ["the rocket reached orbit"]})
    http.post("/v1/predict", json={"texts": []})
    http.get("/v1/model")
    http.get("/no/such/path")
    after = _samples(http)

    def delta(key: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta(_requests("/v1/predict", "POST", "200")) == 3
    assert delta(_requests("/v1/predict", "POST", "422")) == 1
    assert delta(_requests("/v1/model", "GET", "200")) == 1
    assert delta(_requests("unmatched", "GET", "404")) == 1  # raw paths never become labels
    latency = (
        "textclf_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/v1/predict")),
    )
    assert delta(latency) == 4


def test_metrics_count_predictions_by_label(http: httpx.Client, predictor: Predictor) -> None:
    texts = ["the rocket reached orbit", "a home run in the ninth inning", "the rocket landed"]
    expected = [p.label for p in predictor.predict(texts)]
    before = _samples(http)
    http.post("/v1/predict", json={"texts": texts})
    after = _samples(http)

    for label in set(expected):
        key = ("textclf_predictions_total", (("label", label),))
        assert after[key] - before.get(key, 0.0) == expected.count(label)
    batch_texts = after["textclf_batch_texts_sum", ()] - before["textclf_batch_texts_sum", ()]
    assert batch_texts == len(texts)


def test_metrics_name_the_model_version(http: httpx.Client, predictor: Predictor) -> None:
    labels = (("name", predictor.ref.name), ("version", predictor.ref.version))

    assert _samples(http)["textclf_model_info", labels] == 1.0
