"""Batch scoring of a large file: textclf local and Ray engines vs fastText and scikit-learn.

The corpus repeats the 20 Newsgroups test posts to --rows texts (JSON Lines). Each contender
runs in its own process, which reads the file, scores every text and writes one output line per
text; docs/s counts that whole pass (textclf's includes loading the model and starting its
processes, ~0.3 s; fastText's and scikit-learn's exclude training and loading), and peak RSS is the
most the process tree held at once (sampled every 0.2 s: workers and Ray's processes included).
"docs/s loaded" is textclf local's rate once every worker has the model, the figure a longer
input approaches and the like-for-like one beside fastText's and scikit-learn's.
fastText (unigram and bigram) and the 1-2 gram TF-IDF + LinearSVC pipeline are trained on the
same training split, as a user would. A second table checks that memory stays flat: the local
engine's peak RSS at --rows/10 and at --rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    Result,
    Table,
    Target,
    default_model,
    median_row,
    process_tree,
    rss_mib,
    step,
)

NAME = "batch"
CONTENDERS = (
    "textclf-1", "textclf-2", "ray-1", "ray-2", "fasttext-unigram", "fasttext-bigram", "sklearn",
)  # fmt: skip
_COLUMNS = {
    "name": "contender",
    "docs_s": "docs/s",
    "loaded_docs_s": "docs/s loaded",
    "peak_rss_mib": "peak RSS MiB",
    "accuracy": "accuracy",
    "seconds": "seconds",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=200_000, help="texts in the corpus")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders, comma-separated")
    parser.add_argument("--quick", action="store_true", help="20,000 rows (a smoke test)")
    parser.add_argument("--retrain", action="store_true", help="ignore the cached default model")
    parser.add_argument(
        "--repeat",
        type=_positive,
        default=1,
        help="passes per contender, in interleaved rounds; each row is the median pass by docs/s "
        "(a shared machine's speed drifts by 10-20%% between passes seconds apart)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one contender
    parser.add_argument("--work", help=argparse.SUPPRESS)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def run(args: argparse.Namespace) -> Result:
    if args.one:  # a child started by _measure: one contender, its figures on stdout
        main_one(args)
        raise SystemExit(0)
    rows = 20_000 if args.quick else args.rows
    model, _ = default_model("kept", retrain=args.retrain)
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        return _run(args, rows, model, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, rows: int, model: Path, work: Path) -> Result:
    with step(f"writing a corpus of {rows:,} test posts"):
        corpus = _corpus(work / "corpus.jsonl", rows)
        small = _corpus(work / "small.jsonl", rows // 10)
    names = list(filter(None, args.only.split(",")))  # --only "": the flatness check alone
    repeat = args.repeat
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_ in range(repeat):  # rounds, not one contender's passes back to back: drift is shared
        for name in names if round_ % 2 == 0 else names[::-1]:  # A B, B A: a steady drift cancels
            suffix = f", pass {round_ + 1} of {repeat}" if repeat > 1 else ""
            with step(f"{name} on {rows:,} rows{suffix}"):
                runs[name].append(_measure(name, model, corpus, work))
    table = [{"name": name, **median_row(runs[name], "docs_s")} for name in names]
    flat = [
        {"name": f"textclf-1, {n:,} rows", **_measure("textclf-1", model, path, work)}
        for n, path in ((rows // 10, small), (rows, corpus))
    ]
    by = {r["name"]: r for r in table}
    targets = []
    if {"textclf-1", "textclf-2"} <= by.keys():
        ratio = _paired_ratio(runs["textclf-2"], runs["textclf-1"])
        label = "2 workers / 1 worker docs/s" + (", median of rounds" if repeat > 1 else "")
        targets.append(Target(label, ratio, 1.7, ">="))
        one_loaded, two_loaded = (by[n]["loaded_docs_s"] for n in ("textclf-1", "textclf-2"))
        if one_loaded and two_loaded:  # None for an engine that does not report its start-up
            ratio = two_loaded / one_loaded
            targets.append(Target("2 workers / 1 worker docs/s, model loaded", ratio, 1.7, ">="))
    if {"textclf-2", "fasttext-unigram"} <= by.keys():
        ratio = by["textclf-2"]["docs_s"] / by["fasttext-unigram"]["docs_s"]
        targets.append(Target("stretch: textclf 2 workers / fastText unigram", ratio, 1.0, ">="))
    growth = flat[1]["peak_rss_mib"] / flat[0]["peak_rss_mib"]
    targets.append(Target(f"peak RSS at {rows:,} / at {rows // 10:,} rows", growth, 1.1, "<="))
    tables = [
        Table(f"batch scoring, {rows:,} 20 Newsgroups test posts (JSON Lines)", _COLUMNS, table),
        Table("memory flatness, local engine, 1 worker", _COLUMNS, flat),
    ][0 if table else 1 :]
    details = {"rows": rows, "model": str(model), "passes": repeat}
    if repeat > 1:
        details["docs_s_per_pass"] = {n: [round(r["docs_s"]) for r in runs[n]] for n in names}
        if {"textclf-1", "textclf-2"} <= by.keys():
            details["ratio_of_median_passes"] = round(
                by["textclf-2"]["docs_s"] / by["textclf-1"]["docs_s"], 3
            )
    return Result(NAME, tables, targets, details)


def _paired_ratio(numerators: list[dict[str, Any]], denominators: list[dict[str, Any]]) -> float:
    """The median over rounds of one round's docs/s ratio: passes of one round run back to back,
    so they share the machine's speed, which drifts by 10-40% over minutes here."""
    ratios = [a["docs_s"] / b["docs_s"] for a, b in zip(numerators, denominators, strict=True)]
    return statistics.median(ratios)


def _corpus(path: Path, rows: int) -> Path:
    from bench.common import load_splits

    test = load_splits("kept").test
    with path.open("w") as handle:
        for i in range(rows):
            j = i % len(test.texts)
            handle.write(json.dumps({"text": test.texts[j], "label": test.labels[j]}) + "\n")
    return path


def _measure(name: str, model: Path, corpus: Path, work: Path) -> dict[str, Any]:
    """Run one contender in a child process, sampling its process tree's RSS as it runs."""
    command = [sys.executable, "-m", "bench", "batch", "--one", name, "--work", str(work)]
    proc = subprocess.Popen([*command, "--only", f"{model}|{corpus}"], stdout=subprocess.PIPE)
    peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = sum(rss_mib(pid) for pid in process_tree(proc.pid))
            peak[0] = max(peak[0], total)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return {**result, "peak_rss_mib": round(peak[0], 1)}


def one(name: str, model: Path, corpus: Path, work: Path) -> dict[str, Any]:
    """The contender `name`'s pass over `corpus`: docs/s and accuracy. Labels are compared
    afterwards, file against file: a list of a million of them in this process would count in
    the peak RSS the flatness check measures."""
    loaded: float | None = None
    output = work / f"{name}.jsonl"
    if name.startswith(("textclf", "ray")):
        from textclf.batch import BatchConfig, run_batch

        engine, workers = name.split("-")
        config = BatchConfig(workers=int(workers), engine="local" if engine == "textclf" else "ray")
        summary = run_batch(model, corpus, output, config, overwrite=True, progress=False)
        seconds = summary.seconds
        if summary.ready_seconds is not None:
            loaded = summary.scoring_rows_per_second
    else:
        predict = _fasttext(name, work) if name.startswith("fasttext") else _sklearn()
        start = time.perf_counter()
        texts = [json.loads(line)["text"] for line in corpus.open()]
        labels = predict(texts)
        with output.open("w") as handle:
            handle.writelines(
                json.dumps({"id": i, "label": lab}) + "\n" for i, lab in enumerate(labels)
            )
        seconds = time.perf_counter() - start
    hits, rows = _hits(corpus, output)
    return {
        "docs_s": rows / seconds,
        "loaded_docs_s": loaded,
        "seconds": seconds,
        "accuracy": hits / rows,
    }


def _hits(corpus: Path, output: Path) -> tuple[int, int]:
    """(correct labels, rows), reading the corpus and the output side by side."""
    hits = rows = 0
    with corpus.open() as truth, output.open() as predicted:
        for want, got in zip(truth, predicted, strict=True):
            hits += json.loads(want)["label"] == json.loads(got)["label"]
            rows += 1
    return hits, rows


def _fasttext(name: str, work: Path) -> Any:
    import fasttext

    from bench.common import load_splits

    train = load_splits("kept").train
    path = work / "fasttext-train.txt"
    with path.open("w") as handle:
        for text, label in zip(train.texts, train.labels, strict=True):
            handle.write(f"__label__{label} {_ft_line(text)}\n")
    ngrams = 2 if name.endswith("bigram") else 1
    model = fasttext.train_supervised(str(path), wordNgrams=ngrams, epoch=25, lr=0.5, verbose=0)

    def predict(texts: list[str]) -> list[str]:
        labels, _ = model.predict([_ft_line(t) for t in texts])
        return [label[0].removeprefix("__label__") for label in labels]

    return predict


def _ft_line(text: str) -> str:
    return " ".join(text.lower().split())


def _sklearn() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    from bench.common import load_splits

    train = load_splits("kept").train
    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())
    pipeline.fit(train.texts, train.labels)
    return lambda texts: list(pipeline.predict(texts))


def main_one(args: argparse.Namespace) -> None:
    model, corpus = args.only.split("|")
    print(json.dumps(one(args.one, Path(model), Path(corpus), Path(args.work))))
