"""How fast to predict in-process: textclf vs a scikit-learn pipeline with the same vectorizer.

The baseline is `Pipeline([textclf's own fitted features, LinearSVC])`, the SVC fitted on those
features of textclf's training split, so the two differ only in the model after the vectorizer.
Documents/s at batch sizes 1, 32 and 1024 on the 20 Newsgroups test texts, for scores
(`predict_proba` vs `decision_function`) and for labels (`predict`, which in textclf builds typed
`Prediction` objects); p50/p99 latency of one text; and where textclf's predict time goes
(vectorizer, model, building results). Rounds alternate textclf and baseline so that background
load on a shared machine hits both alike; each figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import (
    Result,
    Table,
    Target,
    default_model,
    load_splits,
    percentile,
    step,
)

NAME = "predict_speed"
BATCH_SIZES = (1, 32, 1024)
RATIO_LIMIT = 0.8
_Fn = Callable[[list[str]], Any]
_THROUGHPUT = {
    "threads": "torch threads",
    "batch": "batch",
    "ours_scores": "textclf predict_proba docs/s",
    "theirs_scores": "sklearn decision_function docs/s",
    "ratio_scores": "ratio",
    "ours_labels": "textclf predict docs/s",
    "theirs_labels": "sklearn predict docs/s",
    "ratio_labels": "ratio",
}
_LATENCY = {
    "threads": "torch threads",
    "what": "one text",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "n": "calls",
}
_SHARE = {
    "threads": "torch threads",
    "batch": "batch",
    "vectorize_us": "vectorize µs/doc",
    "model_us": "model µs/doc",
    "results_us": "to_predictions µs/doc",
    "model_share": "model share",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=1.5, help="per figure and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--latency-calls", type=int, default=2000, help="one-text calls timed")
    parser.add_argument(
        "--torch-threads",
        default="default,1",
        help="torch intra-op thread settings to measure, comma-separated; 'default' is what "
        "textclf.load() users get (torch's default: one per core); the service uses 1",
    )
    parser.add_argument("--quick", action="store_true", help="short timings (a smoke test)")
    parser.add_argument("--retrain", action="store_true", help="ignore the cached default model")


def run(args: argparse.Namespace) -> Result:
    import torch

    import textclf

    seconds, rounds = (0.3, 1) if args.quick else (args.seconds, args.rounds)
    calls = 200 if args.quick else args.latency_calls
    path, _ = default_model("kept", retrain=args.retrain)
    predictor = textclf.load(path)
    with step("loading the data and fitting LinearSVC on textclf's own features"):
        splits = load_splits("kept")
        pipeline = _baseline(predictor, splits.train.texts, splits.train.labels)
    texts = splits.test.texts
    default_threads = torch.get_num_threads()
    throughput, latency, shares, targets = [], [], [], []
    for setting in args.torch_threads.split(","):
        threads = default_threads if setting == "default" else int(setting)
        torch.set_num_threads(threads)
        label = f"{threads} ({setting})" if setting == "default" else str(threads)
        rows = [
            {"threads": label, **_throughput_row(predictor, pipeline, texts, b, seconds, rounds)}
            for b in BATCH_SIZES
        ]
        throughput += rows
        with step(f"latency of one text, {calls} calls each, {threads} torch thread(s)"):
            latency += [
                {"threads": label, **row}
                for row in _latency_rows(predictor, pipeline, texts, calls)
            ]
        with step(f"where textclf's predict time goes, {threads} torch thread(s)"):
            shares += [
                {"threads": label, **_share_row(predictor, texts, b, seconds)} for b in BATCH_SIZES
            ]
        targets += _targets(rows[-1], label)
    torch.set_num_threads(default_threads)
    tables = [
        Table("in-process throughput, 20 Newsgroups test posts", _THROUGHPUT, throughput),
        Table(
            "latency, one text per call (textclf predict(text) / pipeline.predict([text]))",
            _LATENCY,
            latency,
        ),
        Table("textclf predict_proba + to_predictions, by stage", _SHARE, shares),
    ]
    details = {"test_texts": len(texts), "seconds": seconds, "rounds": rounds}
    return Result(NAME, tables, targets, details)


def _targets(top: dict[str, Any], threads: str) -> list[Target]:
    return [
        Target(
            f"batch 1024 docs/s / sklearn pipeline, scores, torch threads {threads}",
            top["ratio_scores"],
            RATIO_LIMIT,
            ">=",
        ),
        Target(
            f"batch 1024 docs/s / sklearn pipeline, labels, torch threads {threads}",
            top["ratio_labels"],
            RATIO_LIMIT,
            ">=",
        ),
    ]


def _baseline(predictor: Any, texts: list[str], labels: list[str]) -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    features = predictor.artifact.vectorizer
    svc = LinearSVC().fit(features.transform(texts), labels)
    return Pipeline([("features", features), ("svc", svc)])


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    """Full batches only, so every timed call has exactly `size` texts."""
    return [list(texts[s : s + size]) for s in range(0, len(texts) - size + 1, size)]


def _docs_per_second(fn: _Fn, batches: list[list[str]], seconds: float) -> float:
    """Documents/s of `fn` cycling over `batches` for at least `seconds` (after one warm-up)."""
    fn(batches[0])
    done, elapsed, i = 0, 0.0, 0
    while elapsed < seconds or i == 0:
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        fn(batch)
        elapsed += time.perf_counter() - start
        done += len(batch)
        i += 1
    return done / elapsed


def _throughput_row(
    predictor: Any, pipeline: Any, texts: list[str], size: int, seconds: float, rounds: int
) -> dict[str, Any]:
    batches = _batches(texts, size)
    fns: dict[str, _Fn] = {
        "ours_scores": predictor.predict_proba,
        "theirs_scores": pipeline.decision_function,
        "ours_labels": predictor.predict,
        "theirs_labels": pipeline.predict,
    }
    samples: dict[str, list[float]] = {key: [] for key in fns}
    with step(f"throughput at batch {size}: {rounds} rounds x {len(fns)} x {seconds}s"):
        for _ in range(rounds):
            for key, fn in fns.items():
                samples[key].append(_docs_per_second(fn, batches, seconds))
    row: dict[str, Any] = {"batch": size}
    row.update({key: statistics.median(values) for key, values in samples.items()})
    row["ratio_scores"] = row["ours_scores"] / row["theirs_scores"]
    row["ratio_labels"] = row["ours_labels"] / row["theirs_labels"]
    return row


def _latency_rows(
    predictor: Any, pipeline: Any, texts: list[str], calls: int
) -> list[dict[str, Any]]:
    """Per-call latency of one text; the two alternate in blocks of 100 calls."""
    ours: list[float] = []
    theirs: list[float] = []
    predictor.predict(texts[0])
    pipeline.predict(texts[:1])
    for block in range(0, calls, 100):
        chunk = [texts[i % len(texts)] for i in range(block, min(block + 100, calls))]
        ours += _per_call(predictor.predict, chunk)
        theirs += _per_call(lambda text: pipeline.predict([text]), chunk)
    return [
        _latency_row("textclf predict(text)", ours),
        _latency_row("sklearn pipeline predict", theirs),
    ]


def _per_call(fn: Callable[[str], Any], texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return times


def _latency_row(what: str, times: list[float]) -> dict[str, Any]:
    return {
        "what": what,
        "p50_ms": percentile(times, 50) * 1000,
        "p99_ms": percentile(times, 99) * 1000,
        "n": len(times),
    }


def _share_row(predictor: Any, texts: list[str], size: int, seconds: float) -> dict[str, Any]:
    """Time each stage of textclf's predict path separately, on the same batches."""
    import torch

    from textclf.features import to_torch

    features, model = predictor.artifact.vectorizer, predictor.artifact.model
    batches = _batches(texts, size)
    runs = max(1, min(len(batches), int(seconds * 2000 / size) + 1))
    vectorize = model_s = results = 0.0
    n = 0
    with torch.inference_mode():
        for batch in (batches * (runs // len(batches) + 1))[:runs]:
            t0 = time.perf_counter()
            x = features.transform(batch)
            t1 = time.perf_counter()
            probs = torch.softmax(model(to_torch(x)).float(), dim=1).numpy()
            t2 = time.perf_counter()
            predictor.to_predictions(probs, 1)
            t3 = time.perf_counter()
            vectorize, model_s, results = vectorize + t1 - t0, model_s + t2 - t1, results + t3 - t2
            n += len(batch)
    total = vectorize + model_s + results
    return {
        "batch": size,
        "vectorize_us": vectorize / n * 1e6,
        "model_us": model_s / n * 1e6,
        "results_us": results / n * 1e6,
        "model_share": f"{model_s / total:.1%}",
    }
