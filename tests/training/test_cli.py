"""`textclf train | evaluate | predict` run as a user types them: a real process, real flags, real
files, real signals. One tiny model is trained through the CLI per module and shared."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TUTORIAL = "comp.graphics,sci.space,rec.sport.baseball"
LABELS = sorted(TUTORIAL.split(","))
# A tiny run. Three epochs over ~1,600 posts are only ~20 optimiser steps, so the learning rate is
# pinned rather than left to the default: the accuracy floor below must not move when it does.
TINY = ["--hidden", "32", "--epochs", "3", "--lr", "0.01", "--quiet"]
SHUTTLE = "The shuttle launch was delayed by weather"


@pytest.fixture(scope="module")
def env(archive: Path) -> dict[str, str]:
    return {**os.environ, "TEXTCLF_20NG_ARCHIVE": str(archive), "PYTHONUNBUFFERED": "1"}


def textclf(
    *args: str | Path,
    env: dict[str, str],
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`textclf ARGS...` in a fresh interpreter, exactly as `python -m training ARGS...`."""
    return subprocess.run(
        [sys.executable, "-m", "training", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A failure must be exit 1 with one `textclf: error: ...` line and no stack trace."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("textclf: error: ")
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def _snapshot(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir())


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- train, evaluate, predict on 20 Newsgroups -------------------------------------------------


@pytest.fixture(scope="module")
def trained(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    work = tmp_path_factory.mktemp("cli")
    result = textclf("train", "--out", "M", "--categories", TUTORIAL, *TINY, env=env, cwd=work)
    return work / "M", result


@pytest.fixture(scope="module")
def model(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    path, result = trained
    _ok(result)
    return path


def test_train_writes_the_artifact_and_prints_metrics(
    trained: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    path, result = trained
    _ok(result)
    assert f"model written to {path.name}" in result.stdout
    assert "validation: accuracy" in result.stdout
    assert "test set:" in result.stdout
    for label in LABELS:
        assert label in result.stdout
    assert {p.name for p in path.iterdir()} == {
        "manifest.json",
        "vectorizer.json",
        "model.safetensors",
        "README.md",
        "learning_curves.png",
        "confusion_matrix.png",
        "reliability_diagram.png",
    }
    assert _siblings(path) == ["M"]  # no staging folder left behind
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["labels"] == LABELS
    assert manifest["name"] == "textclf-model"
    assert manifest["training_config"]["train"]["epochs"] == 3
    assert manifest["training_config"]["train"]["hidden"] == [32]


def test_evaluate_json(model: Path, env: dict[str, str]) -> None:
    result = _ok(textclf("evaluate", model, "--json", env=env, cwd=model.parent))
    report = json.loads(result.stdout)
    assert {"accuracy", "macro_f1", "per_label", "n", "model", "data"} <= set(report)
    assert report["accuracy"] >= 0.85
    assert report["macro_f1"] >= 0.85
    assert sorted(report["per_label"]) == LABELS
    assert report["n"] == sum(row["support"] for row in report["per_label"].values()) == 1180
    assert report["data"]["split"] == "20newsgroups test split"
    manifest = json.loads((model / "manifest.json").read_text())
    assert report["model"] == {"name": "textclf-model", "version": manifest["version"]}
    # The same test split, so the same number the training run recorded.
    assert report["accuracy"] == pytest.approx(manifest["metrics"]["test"]["accuracy"])


def test_evaluate_table(model: Path, env: dict[str, str]) -> None:
    result = _ok(textclf("evaluate", model, env=env, cwd=model.parent))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("textclf-model (")
    assert lines[1].split() == ["label", "precision", "recall", "f1", "support"]
    for label in LABELS:
        assert any(line.startswith(label) for line in lines)
    assert lines[-1].startswith("accuracy ") and "macro-F1" in lines[-1] and "n=1180" in lines[-1]


def test_predict_a_text_argument(model: Path, env: dict[str, str]) -> None:
    result = _ok(textclf("predict", model, SHUTTLE, env=env, cwd=model.parent))
    (prediction,) = _json_lines(result.stdout)
    assert prediction["label"] == "sci.space"
    assert 0.0 < prediction["score"] <= 1.0
    assert prediction["top_k"] == [{"label": "sci.space", "score": prediction["score"]}]


def test_predict_several_arguments_keeps_their_order_and_clamps_top_k(
    model: Path, env: dict[str, str]
) -> None:
    texts = [
        "The pitcher threw a curveball and the Yankees won in the ninth inning",
        SHUTTLE,
        "How do I render 3D polygons with OpenGL?",
    ]
    result = _ok(textclf("predict", model, *texts, "--top-k", "50", env=env, cwd=model.parent))
    predictions = _json_lines(result.stdout)
    assert [p["label"] for p in predictions] == ["rec.sport.baseball", "sci.space", "comp.graphics"]
    assert all(len(p["top_k"]) == 3 for p in predictions)  # --top-k beyond the labels: all 3


def test_predict_from_stdin_plain_and_json_lines(model: Path, env: dict[str, str]) -> None:
    lines = [
        SHUTTLE,
        json.dumps({"text": "The pitcher threw a curveball and the Yankees won", "id": 7}),
        "",
        json.dumps({"text": "Rendering polygons with OpenGL shaders"}, ensure_ascii=True),
        '  {"text": "NASA orbit and the moon"}',
    ]
    result = _ok(
        textclf(
            "predict",
            model,
            "--top-k",
            "3",
            "--batch-size",
            "2",
            stdin="\n".join(lines) + "\n",
            env=env,
            cwd=model.parent,
        )
    )
    predictions = _json_lines(result.stdout)
    assert len(predictions) == 5  # one per input line, the empty one included
    labels = [p["label"] for p in predictions]
    assert labels[0] == "sci.space"
    assert labels[1] == "rec.sport.baseball"
    assert labels[3] == "comp.graphics"
    assert labels[4] == "sci.space"
    for prediction in predictions:
        top = prediction["top_k"]
        assert sorted(s["label"] for s in top) == LABELS
        scores = [s["score"] for s in top]
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)


def test_predict_explain_json_lines(model: Path, env: dict[str, str]) -> None:
    args = ("predict", model, SHUTTLE, "--explain", "--explain-terms", "3", "--json")
    (prediction,) = _json_lines(_ok(textclf(*args, env=env, cwd=model.parent)).stdout)
    assert prediction["label"] == "sci.space" and len(prediction["explanation"]) == 3
    for term in prediction["explanation"]:
        for start, end in term["spans"]:
            assert SHUTTLE[start:end].lower().split() == term["term"].split()


def test_predict_explain_table(model: Path, env: dict[str, str]) -> None:
    result = _ok(textclf("predict", model, SHUTTLE, "--explain", env=env, cwd=model.parent))
    header, columns, *rows = result.stdout.strip().splitlines()
    assert header.startswith("sci.space ") and columns.split() == ["weight", "term", "occurrences"]
    assert 1 <= len(rows) <= 10
    weight, term, *written = rows[0].split()
    assert float(weight) and term.lower() in SHUTTLE.lower() and written


def test_predict_bad_stdin_line(model: Path, env: dict[str, str]) -> None:
    stdin = SHUTTLE + '\n{"text": broken\n'
    result = textclf("predict", model, stdin=stdin, env=env, cwd=model.parent)
    _one_line_error(result, "standard input, line 2", "invalid JSON")


def test_predict_top_k_zero(model: Path, env: dict[str, str]) -> None:
    result = textclf("predict", model, SHUTTLE, "--top-k", "0", env=env, cwd=model.parent)
    _one_line_error(result, "--top-k must be at least 1")


def test_predict_refuses_a_folder_that_is_not_a_model(env: dict[str, str], tmp_path: Path) -> None:
    result = textclf("predict", tmp_path, SHUTTLE, env=env, cwd=tmp_path)
    _one_line_error(result, "manifest.json", "not a textclf model")


# --- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], ["train", "evaluate", "predict", "serve"]),
        (["train"], ["--out", "--categories", "--data", "--hidden", "--epochs", "--overwrite"]),
        (["evaluate"], ["model", "--json", "--test-data"]),
        (["predict"], ["model", "TEXT", "--top-k"]),
        (["serve"], []),
    ],
)
def test_help(command: list[str], expected: list[str], env: dict[str, str], tmp_path: Path) -> None:
    result = _ok(textclf(*command, "--help", env=env, cwd=tmp_path))
    assert result.stdout.startswith(f"usage: {' '.join(['textclf', *command])}")
    for option in expected:
        assert option in result.stdout


def test_no_command_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    result = textclf(env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: textclf" in result.stderr and "Traceback" not in result.stderr


# --- your own data ----------------------------------------------------------------------------

VOCABULARY = {
    "astronomy": "planet comet galaxy nebula telescope asteroid eclipse quasar pulsar meteor",
    "cooking": "recipe simmer garlic oven saute whisk butter dough basil skillet",
    "football": "goalkeeper penalty striker offside midfield corner referee tackle dribble goal",
}
FILLER = ["the", "a", "and", "of", "with", "today", "really"]


def _rows(seed: int = 0, per_label: int = 40) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for label, words in VOCABULARY.items():
        for _ in range(per_label):
            text = rng.choices(words.split(), k=8) + rng.choices(FILLER, k=3)
            rng.shuffle(text)
            rows.append((" ".join(text), label))
    rng.shuffle(rows)
    return rows


def _write_csv(path: Path) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["body", "topic"])
        writer.writerows(_rows())
    return path


def _write_jsonl(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for text, label in _rows():
            fh.write(json.dumps({"body": text, "topic": label}) + "\n")
    return path


def _train_on(data: Path, env: dict[str, str]) -> dict[str, Any]:
    result = textclf(
        "train",
        "--out",
        "topics-model",
        "--data",
        data.name,
        "--text-column",
        "body",
        "--label-column",
        "topic",
        "--hidden",
        "16",
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--lr",
        "0.01",
        "--min-df",
        "1",
        "--quiet",
        "--json",
        env=env,
        cwd=data.parent,
    )
    trained: dict[str, Any] = json.loads(_ok(result).stdout)
    assert trained["path"] == "topics-model"
    assert trained["metrics"]["test"]["n"] == 24  # 20% of 120, stratified
    assert trained["metrics"]["test"]["accuracy"] >= 0.9
    manifest = json.loads((data.parent / "topics-model" / "manifest.json").read_text())
    assert manifest["labels"] == sorted(VOCABULARY)
    assert manifest["data"]["sizes"]["test"] == 24
    return trained


def test_user_csv_end_to_end(env: dict[str, str], tmp_path: Path) -> None:
    _train_on(_write_csv(tmp_path / "topics.csv"), env)
    out = tmp_path / "topics-model"

    # With no data flags, evaluate scores the recorded file (the whole of it).
    report = json.loads(_ok(textclf("evaluate", out, "--json", env=env, cwd=tmp_path)).stdout)
    assert report["n"] == 120
    assert report["accuracy"] >= 0.9
    assert sorted(report["per_label"]) == sorted(VOCABULARY)
    assert report["data"]["split"] == "whole file"

    texts = ["the comet passed the galaxy", "whisk the butter and garlic", "penalty for offside"]
    result = _ok(textclf("predict", out, *texts, env=env, cwd=tmp_path))
    assert [p["label"] for p in _json_lines(result.stdout)] == list(VOCABULARY)


def test_user_jsonl_trains(env: dict[str, str], tmp_path: Path) -> None:
    _train_on(_write_jsonl(tmp_path / "topics.jsonl"), env)


def _csv_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "content", "extra", "needles"),
    [
        ("nolabel.csv", "text,category\nhello,a\nworld,b\n", [], ["no column 'label'"]),
        ("missing.csv", None, [], ["missing.csv", "no such file"]),
        (
            "bad.jsonl",
            '{"text": "x", "label": "a"}\n{oops\n',
            [],
            ["bad.jsonl, row 2", "invalid JSON"],
        ),
        ("ok.csv", "text,label\nx,a\ny,b\n", ["--hidden", "32,abc"], ["--hidden takes"]),
    ],
)
def test_bad_data_is_one_clear_line(
    name: str,
    content: str | None,
    extra: list[str],
    needles: list[str],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    if content is not None:
        _csv_text(tmp_path / name, content)
    result = textclf(
        "train", "--out", "M", "--data", name, *extra, "--quiet", env=env, cwd=tmp_path
    )
    _one_line_error(result, *needles)
    assert not (tmp_path / "M").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".M.")]


# --- never clobber an artifact ----------------------------------------------------------------


@pytest.fixture
def old_artifact(trained_model_dir: Path, tmp_path: Path) -> Path:
    """An existing, valid artifact at the --out the user is about to pass."""
    return Path(shutil.copytree(trained_model_dir, tmp_path / "M"))


def test_existing_out_is_refused_without_overwrite(old_artifact: Path, env: dict[str, str]) -> None:
    before = _snapshot(old_artifact)
    result = textclf(
        "train", "--out", "M", "--categories", TUTORIAL, *TINY, env=env, cwd=old_artifact.parent
    )
    _one_line_error(result, "M: already exists; pass --overwrite to replace it")
    assert _snapshot(old_artifact) == before
    assert _siblings(old_artifact) == ["M"]


class _StderrWatcher:
    """Collects a child's stderr on a thread, so the test can wait for a phrase without blocking
    on a line that has not ended yet."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while chunk := os.read(self._stream.fileno(), 4096):
            with self._lock:
                self._chunks.append(chunk)

    @property
    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")

    def wait_for(self, phrase: str, process: subprocess.Popen[bytes], limit: float) -> None:
        deadline = time.monotonic() + limit
        while phrase not in self.text:
            if process.poll() is not None:
                pytest.fail(f"exited {process.returncode} before {phrase!r}:\n{self.text}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {phrase!r} after {limit}s:\n{self.text[-2000:]}")
            time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(timeout=30)


# All 20 labels and up to 50 epochs: minutes of training, so the signal lands mid-epoch.
# Unigrams only, to reach the first epoch sooner.
SLOW = ["--epochs", "50", "--hidden", "64", "--ngram-max", "1"]


@pytest.fixture
def train_process(old_artifact: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`textclf train` on all 20 labels with --overwrite onto the old artifact, progress shown."""
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "train", "--out", "M", "--overwrite", *SLOW],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=old_artifact.parent,
    )
    try:
        yield process
    finally:
        if process.poll() is None:  # only if the test failed half-way
            process.kill()
            process.wait(timeout=30)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_training_writes_nothing(
    signum: signal.Signals,
    train_process: subprocess.Popen[bytes],
    old_artifact: Path,
) -> None:
    before = _snapshot(old_artifact)
    watcher = _StderrWatcher(train_process)
    # The first epoch's line (stderr is a pipe: no bars, one line per epoch), so the signal
    # lands mid-training.
    watcher.wait_for("epoch  1  loss", train_process, limit=240)

    train_process.send_signal(signum)
    assert train_process.wait(timeout=120) == 130
    watcher.join()
    stderr = watcher.text
    assert f"{signum.name}: stopping; no artifact will be written" in stderr
    assert "textclf: training interrupted; no artifact was written" in stderr
    assert "Traceback" not in stderr
    assert train_process.stdout is not None
    assert "model written" not in train_process.stdout.read().decode()

    assert _snapshot(old_artifact) == before  # the old model, byte for byte
    assert _siblings(old_artifact) == ["M"]  # no .M.tmp-* or .M.old-* folders
    manifest = json.loads((old_artifact / "manifest.json").read_text())
    assert manifest["name"] == "test-model"


def test_every_training_flag_reaches_the_recorded_config() -> None:
    """A flag that parses but is dropped on the way to the config would silently do nothing."""
    from training.cli import _run_config, build_parser

    args = build_parser().parse_args(
        [
            "train",
            "--out",
            "m",
            "--ngram-max",
            "2",
            "--min-df",
            "3",
            "--max-df",
            "0.4",
            "--max-features",
            "1000",
            "--subject-weight",
            "0.25",
            "--bigram-min-df",
            "4",
            "--bigram-min-gain",
            "0.02",
            "--hidden",
            "64,32",
            "--dropout",
            "0.3",
            "--epochs",
            "7",
            "--batch-size",
            "64",
            "--lr",
            "0.002",
            "--weight-decay",
            "0.05",
            "--label-smoothing",
            "0.1",
            "--patience",
            "2",
            "--seed",
            "5",
            "--threads",
            "2",
            "--device",
            "cpu",
        ]
    )
    config = _run_config(args)
    assert config.features.ngram_range == (1, 2)
    assert (config.features.min_df, config.features.max_df) == (3, 0.4)
    assert (config.features.max_features, config.features.subject_weight) == (1000, 0.25)
    assert (config.features.bigram_min_df, config.train.bigram_min_gain) == (4, 0.02)
    train = config.train
    assert (train.hidden, train.dropout, train.epochs, train.batch_size) == ((64, 32), 0.3, 7, 64)
    assert (train.lr, train.weight_decay, train.label_smoothing) == (0.002, 0.05, 0.1)
    assert (train.patience, train.seed, train.threads, train.device) == (2, 5, 2, "cpu")


def _args(*flags: str) -> Any:
    from training.cli import build_parser

    return build_parser().parse_args(["train", "--out", "m", *flags])


# Every config field, a flag setting it to something other than its default, and the value the
# config must then hold. Coverage is checked below: a new field must be added here.
EVERY_FIELD: dict[str, tuple[list[str], Any]] = {
    "data": (["--data", "d.csv"], Path("d.csv")),
    "test_data": (["--test-data", "t.csv"], Path("t.csv")),
    "text_column": (["--text-column", "body"], "body"),
    "label_column": (["--label-column", "topic"], "topic"),
    "categories": (["--categories", "a.b, c.d"], ("a.b", "c.d")),
    "remove": (["--remove", "headers,quotes"], ("headers", "quotes")),
    "archive": (["--archive", "news.tar.gz"], Path("news.tar.gz")),
    "test_size": (["--test-size", "0.3"], 0.3),
    "val_size": (["--val-size", "0.15"], 0.15),
    "seed": (["--seed", "5"], 5),  # DataConfig's and TrainConfig's alike
    "ngram_range": (["--ngram-range", "1", "3"], (1, 3)),
    "min_df": (["--min-df", "0.01"], 0.01),
    "max_df": (["--max-df", "0.4"], 0.4),
    "max_features": (["--max-features", "1000"], 1000),
    "sublinear_tf": (["--no-sublinear-tf"], False),
    "lowercase": (["--no-lowercase"], False),
    "stop_words": (["--stop-words", "english"], "english"),
    "subject_weight": (["--subject-weight", "0.25"], 0.25),
    "subject_ngram_range": (["--subject-ngram-range", "1", "1"], (1, 1)),
    "bigram_min_df": (["--bigram-min-df", "4"], 4),
    "hidden": (["--hidden", "64,32"], (64, 32)),
    "dropout": (["--dropout", "0.3"], 0.3),
    "epochs": (["--epochs", "7"], 7),
    "batch_size": (["--batch-size", "64"], 64),
    "lr": (["--lr", "0.002"], 0.002),
    "first_layer_lr": (["--first-layer-lr", "0.01"], 0.01),
    "weight_decay": (["--weight-decay", "0.05"], 0.05),
    "label_smoothing": (["--label-smoothing", "0.1"], 0.1),
    "patience": (["--patience", "2"], 2),
    "naive_bayes_alpha": (["--naive-bayes-alpha", "0.5"], 0.5),
    "bigram_min_gain": (["--bigram-min-gain", "0.02"], 0.02),
    "refit": (["--no-refit"], False),
    "device": (["--device", "cpu"], "cpu"),
    "threads": (["--threads", "2"], 2),
}


def test_every_config_field_has_a_flag_that_reaches_the_config() -> None:
    from dataclasses import asdict, fields

    from textclf.config import DataConfig, FeatureConfig, TrainConfig
    from training.cli import _run_config

    names = {f.name for cls in (DataConfig, FeatureConfig, TrainConfig) for f in fields(cls)}
    assert set(EVERY_FIELD) == names
    config = _run_config(_args(*(flag for flags, _ in EVERY_FIELD.values() for flag in flags)))
    recorded = {**asdict(config.data), **asdict(config.features), **asdict(config.train)}
    assert config.data.seed == config.train.seed
    for name, (_, expected) in EVERY_FIELD.items():
        assert recorded[name] == expected, name


@pytest.mark.parametrize(
    ("flags", "section", "name", "expected"),
    [
        (["--max-features", "none"], "features", "max_features", None),
        (["--max-features", "0"], "features", "max_features", None),  # 0 = all, as ever
        (["--stop-words", "none"], "features", "stop_words", None),
        (["--threads", "None"], "train", "threads", None),
        (["--first-layer-lr", "none"], "train", "first_layer_lr", None),
        (["--min-df", "3"], "features", "min_df", 3),  # a count, not 3.0
        (["--min-df", "1.0"], "features", "min_df", 1),
        (["--ngram-max", "2"], "features", "ngram_range", (1, 2)),  # the older flag
        (["--hidden", "64", "--hidden", "8,8"], "train", "hidden", (8, 8)),
    ],
)
def test_flag_spellings(flags: list[str], section: str, name: str, expected: Any) -> None:
    from training.cli import _run_config

    value = getattr(getattr(_run_config(_args(*flags)), section), name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "flags",
    [["--stop-words", "french"], ["--device", "tpu"], ["--ngram-range", "1"], ["--epochs", "x"]],
)
def test_bad_flag_values_are_usage_errors(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _args(*flags)
    assert exit_.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_evaluate_tells_given_data_flags_from_defaults() -> None:
    from training.cli import _evaluation_data, build_parser

    recorded = {"training_config": {"data": {"data": "train.csv", "text_column": "body"}}}
    args = build_parser().parse_args(["evaluate", "m"])
    assert _evaluation_data(args, recorded).text_column == "body"
    args = build_parser().parse_args(["evaluate", "m", "--text-column", "text"])
    config = _evaluation_data(args, recorded)
    assert (config.data, config.text_column) == (None, "text")


# Python run with the training extra's modules made unimportable, as on `pip install textclf`.
WITHOUT_TRAIN_EXTRA = """
import sys
for name in ("torch", "numpy", "scipy", "sklearn", "safetensors", "tqdm", "matplotlib"):
    sys.modules[name] = None  # import fails; importlib.util.find_spec says None
from training.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without_train_extra(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAIN_EXTRA, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["evaluate", "--help"]])
def test_help_needs_no_training_extra(args: list[str], tmp_path: Path) -> None:
    result = _ok(_without_train_extra(*args, cwd=tmp_path))
    assert result.stdout.startswith("usage: textclf")


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("train", ["--out", "M", "--epochs", "1"]),
        ("evaluate", ["M"]),
        ("predict", ["M", "text"]),
    ],
)
def test_missing_training_extra_is_one_line(command: str, args: list[str], tmp_path: Path) -> None:
    result = _without_train_extra(command, *args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"textclf {command}: needs the 'train' extra")
    assert "pip install 'textclf[train]'" in line
    assert not (tmp_path / "M").exists()


def test_only_serve_and_the_full_help_build_the_settings_flags() -> None:
    """`serve`'s flags come from pydantic-settings (~0.2 s to import): every other subcommand
    (`predict` in a pipe, `batch`, `train`) starts without them, yet `--help` lists serve."""
    script = """
import sys
from training.cli import build_parser
other = build_parser("batch")
light = "pydantic_settings" not in sys.modules
listed = "serve" in other.format_help()
build_parser("serve").parse_args(["serve", "m", "--max-texts", "8"])
print(light, listed, "pydantic_settings" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr
