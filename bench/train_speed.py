"""How fast to train: the default `textclf train` vs a TF-IDF (1-2 grams) + LinearSVC pipeline fit.

Both run as fresh processes on the same data (textclf's loader, the same training split), one
after the other, `--repeats` times, alternating so that a burst of background load hits both.
Two comparisons: the whole command's wall time (interpreter start, imports, data, vectorizing,
fitting, scoring the test set; textclf also writes its artifact), and the training part alone
(vectorizing + fitting, as each process reports it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ARCHIVE_ENV, ROOT, Result, Table, Target, archive, step

NAME = "train_speed"
WALL_LIMIT_S = 60.0
RATIO_LIMIT = 3.0
_COLUMNS = {
    "what": "",
    "textclf": "textclf train (s)",
    "baseline": "TF-IDF 1-2g + LinearSVC (s)",
    "ratio": "ratio",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=2, help="runs of each (median reported)")
    parser.add_argument("--setting", default="kept", choices=["kept", "removed"])
    parser.add_argument("--quick", action="store_true", help="one run of each")


def run(args: argparse.Namespace) -> Result:
    repeats = 1 if args.quick else args.repeats
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="textclf-bench-") as tmp:
        for i in range(repeats):
            with step(f"run {i + 1}/{repeats}: textclf train (default model)"):
                ours.append(_textclf_train(Path(tmp) / f"model-{i}", args.setting))
            with step(f"run {i + 1}/{repeats}: TF-IDF 1-2g + LinearSVC pipeline fit"):
                theirs.append(_baseline_train(args.setting))
    rows = [
        _row("whole command, wall", ours, theirs, "wall", "wall"),
        _row("training: vectorize + fit", ours, theirs, "train", "fit"),
        _row("  of which vectorize", ours, theirs, "vectorize", None),
        _row("  of which fit", ours, theirs, "fit", None),
        _row("load data", ours, theirs, "load_data", "load_data"),
        _row("test accuracy", ours, theirs, "test_accuracy", "test_accuracy"),
    ]
    wall, train = rows[0], rows[1]
    targets = [
        Target("default training, whole command wall", wall["textclf"], WALL_LIMIT_S, "<=", "s"),
        Target(
            "training time / LinearSVC pipeline (vectorize + fit)",
            train["ratio"],
            RATIO_LIMIT,
            "<=",
        ),
        Target("whole-command wall / LinearSVC command wall", wall["ratio"], RATIO_LIMIT, "<="),
    ]
    table = Table(f"training time, median of {repeats} ({args.setting})", _COLUMNS, rows)
    details = {"textclf_runs": ours, "baseline_runs": theirs}
    return Result(NAME, [table], targets, details)


def _row(
    what: str,
    ours: list[dict[str, float]],
    theirs: list[dict[str, float]],
    our_key: str,
    their_key: str | None,
) -> dict[str, Any]:
    mine = _median(ours, our_key)
    if their_key is None:
        return {"what": what, "textclf": mine, "baseline": "-", "ratio": "-"}
    other = _median(theirs, their_key)
    return {"what": what, "textclf": mine, "baseline": other, "ratio": mine / other}


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    found = archive()
    if found is not None:
        env[ARCHIVE_ENV] = str(found)
    return env


def _textclf_train(out: Path, setting: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """`textclf train --out OUT` exactly as a user types it (plus --json to read its timings)."""
    command = [_textclf_command(), "train", "--out", str(out), "--quiet", "--json"]
    if setting == "removed":
        command += ["--remove", "headers,footers,quotes"]
    report, wall = _timed(command, env)
    timings = report["timings"]
    return {
        "wall": wall,
        "load_data": timings["load_data"],
        "vectorize": timings["vectorize"],
        "fit": timings["fit"],
        "train": timings["vectorize"] + timings["fit"],
        "test_accuracy": report["metrics"]["test"]["accuracy"],
    }


def _baseline_train(setting: str) -> dict[str, float]:
    report, wall = _timed([sys.executable, "-m", "bench.sklearn_train", "--setting", setting])
    return {**report["timings"], "wall": wall, "test_accuracy": report["test_accuracy"]}


def _textclf_command() -> str:
    script = Path(sys.executable).parent / "textclf"
    return str(script) if script.exists() else "textclf"


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run `command`, return its last stdout line as JSON and its wall time."""
    start = time.perf_counter()
    full_env = {**_env(), **(env or {})}
    done = subprocess.run(command, cwd=ROOT, env=full_env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall
