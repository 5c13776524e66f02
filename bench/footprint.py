"""How big: the default artifact's size, its load time and the memory of the process serving it.

Baseline: the TF-IDF (1-2 grams) + LinearSVC pipeline of `accuracy`, fitted on the same training
split and saved the only way scikit-learn offers (pickle), loaded in a fresh process the same
way. Load times come from fresh processes (`--repeats`, median), timing `textclf.load(dir)` (which
verifies every checksum) separately from importing the library. Serving memory is the RSS of the
`textclf serve` process after startup and after a burst of requests, next to the bare FastAPI
app's.

Workers: the proportional set size (PSS, /proc/PID/smaps_rollup: a page shared by k processes
counts 1/k in each) summed over every process of `textclf serve --workers N` (supervisor,
workers, their model processes) for N = 1, 2, 4, after startup and a burst of requests. The
weights are memory-mapped, so N workers should not cost N copies of them. `--serve-from DIR` runs
the servers from another checkout's code (`git archive COMMIT | tar -x -C DIR`) for a before/after
comparison in one session.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, Result, Table, Target, default_model, load_splits, step
from bench.servers import Server, serve

NAME = "footprint"
SIZE_LIMIT_MB, LOAD_LIMIT_S, MEMORY_LIMIT_MB = 50.0, 1.5, 600.0
_LOADER = """
import json, sys, time
def rss_mib():  # VmRSS, not ru_maxrss: that survives exec and counts the parent's peak
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
start = time.perf_counter()
{imports}
imported = time.perf_counter()
model = {load}
loaded = time.perf_counter()
model.{predict}(["The shuttle launch was delayed by weather"])
predicted = time.perf_counter()
print(json.dumps({{"import_s": imported - start, "load_s": loaded - imported,
    "first_predict_s": predicted - loaded,
    "rss_mib": rss_mib()}}))
"""
_LOAD_ROWS = {
    "import_s": "import, s",
    "load_s": "load, s",
    "first_predict_s": "first predict (one text), s",
    "rss_mib": "process RSS after load + predict, MiB",
}
_SIZE = {"what": "", "textclf": "textclf", "baseline": "TF-IDF 1-2g + LinearSVC (pickle)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=5, help="fresh-process loads (median)")
    parser.add_argument("--quick", action="store_true", help="two loads each")
    parser.add_argument("--retrain", action="store_true", help="ignore the cached default model")
    parser.add_argument(
        "--workers",
        default="1,2,4",
        help="worker counts whose memory (PSS) to measure, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--serve-from",
        type=Path,
        help="run the servers from this checkout's code instead (a before/after comparison)",
    )
    parser.add_argument(
        "--only-workers", action="store_true", help="measure only the workers' memory"
    )


def run(args: argparse.Namespace) -> Result:
    model, _ = default_model("kept", retrain=args.retrain)
    if args.serve_from is not None:  # the servers' processes import that code first
        os.environ["PYTHONPATH"] = str(args.serve_from.resolve())
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    workers = _workers_memory(model, counts, 100 if args.quick else 500)
    title = "memory of `textclf serve --workers N` (all its processes)"
    workers_table = Table(title, _WORKERS, workers)
    if args.only_workers:
        return Result(NAME, [workers_table], [], {"workers": workers})
    return _run_all(args, model, workers_table, workers)


def _run_all(
    args: argparse.Namespace, model: Path, workers_table: Table, workers: list[dict[str, Any]]
) -> Result:
    repeats = 2 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="textclf-bench-") as tmp:
        pickled = _pickled_baseline(Path(tmp) / "pipeline.pkl")
        ours = _loads(_textclf_loader(model), repeats, "textclf.load")
        theirs = _loads(_pickle_loader(pickled), repeats, "pickle.load")
        ours_size, theirs_size = _size_mb(model), _size_mb(pickled)
    serving = _serving_memory(model)
    rows: list[dict[str, Any]] = [
        {"what": "artifact size, MB", "textclf": ours_size, "baseline": theirs_size},
        *(
            {
                "what": f"{label} (median of {repeats})",
                "textclf": ours[key],
                "baseline": theirs[key],
            }
            for key, label in _LOAD_ROWS.items()
        ),
        *(
            {
                "what": f"serving process RSS MiB, {when}",
                "textclf": serving["textclf"][when],
                "baseline": f"bare app: {serving['bare'][when]:.0f}",
            }
            for when in ("idle", "after 500 requests")
        ),
    ]
    files: list[dict[str, Any]] = [
        {"file": f.name, "mb": f.stat().st_size / 1e6} for f in sorted(model.iterdir())
    ]
    targets = [
        Target("default artifact size", ours_size, SIZE_LIMIT_MB, "<=", "MB"),
        Target(
            "textclf.load wall (fresh process, after imports)",
            ours["load_s"],
            LOAD_LIMIT_S,
            "<=",
            "s",
        ),
        Target(
            "cold start: import textclf + load, fresh process (stricter reading)",
            ours["import_s"] + ours["load_s"],
            LOAD_LIMIT_S,
            "<=",
            "s",
        ),
        Target(
            "serving process memory (RSS after 500 requests)",
            serving["textclf"]["after 500 requests"] * 2**20 / 1e6,
            MEMORY_LIMIT_MB,
            "<=",
            "MB",
        ),
    ]
    tables = [
        Table("artifact, load and memory", _SIZE, rows),
        Table("artifact files", {"file": "file", "mb": "MB"}, files),
        workers_table,
    ]
    extra = {"serving_mib": serving, "files": files, "workers": workers}
    return Result(NAME, tables, targets, extra)


_WORKERS = {
    "workers": "workers",
    "processes": "processes",
    "total_pss": "total PSS, MiB",
    "pss_per_worker": "PSS per worker, MiB",
    "total_rss": "total RSS, MiB",
}


def _workers_memory(model: Path, counts: list[int], burst: int) -> list[dict[str, Any]]:
    rows = []
    for n in counts:
        with (
            step(f"textclf serve --workers {n}: PSS of every process after {burst} requests"),
            serve("textclf", workers=n, model=model) as server,
        ):
            _burst(server, burst)
            memory = server.memory()
        rows.append(
            {
                "workers": n,
                "processes": memory["processes"],
                "total_pss": memory["total_pss"],
                "pss_per_worker": memory["total_pss"] / n,
                "total_rss": memory["total_rss"],
            }
        )
    return rows


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def _pickled_baseline(out: Path) -> Path:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    with step("fitting and pickling the TF-IDF 1-2g + LinearSVC pipeline"):
        splits = load_splits("kept")
        pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2), LinearSVC()
        )
        pipeline.fit(splits.train.texts, splits.train.labels)
        out.write_bytes(pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def _textclf_loader(model: Path) -> str:
    return _LOADER.format(
        imports="import textclf, textclf.predictor",
        load=f"textclf.load({str(model)!r})",
        predict="predict",
    )


def _pickle_loader(path: Path) -> str:
    return _LOADER.format(
        imports="import pickle, sklearn.pipeline, sklearn.svm, sklearn.feature_extraction.text",
        load=f"pickle.loads(open({str(path)!r}, 'rb').read())",
        predict="predict",
    )


def _loads(code: str, repeats: int, what: str) -> dict[str, float]:
    runs = []
    with step(f"{what} in {repeats} fresh processes"):
        for _ in range(repeats):
            done = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def _serving_memory(model: Path) -> dict[str, dict[str, float]]:
    out = {}
    for kind in ("textclf", "bare"):
        with (
            step(f"{kind} server memory, idle and after 500 requests"),
            serve(kind, model=model) as server,
        ):
            idle = server.memory()["max_process_rss"]
            _burst(server, 500)
            out[kind] = {"idle": idle, "after 500 requests": server.memory()["max_process_rss"]}
    return out


def _burst(server: Server, n: int) -> None:
    """`n` predict requests of real test posts: 1 to 100 texts each, so buffers grow as in use."""
    texts = load_splits("kept").test.texts
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for i in range(n):
            size = 100 if i % 10 == 0 else 1
            chunk = [texts[(i * 101 + j) % len(texts)] for j in range(size)]
            client.post("/v1/predict", json={"texts": chunk, "top_k": 3}).raise_for_status()
