"""`textclf train | evaluate | predict | serve`: flags -> typed config -> library call -> output.

This is the edge where the environment is read (TEXTCLF_20NG_ARCHIVE) and where typed errors
become one-line messages and exit codes instead of stack traces.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from textclf.config import (
    REMOVABLE_PARTS,
    DataConfig,
    FeatureConfig,
    RunConfig,
    TrainConfig,
)
from textclf.errors import TextclfError, TrainingInterrupted

ARCHIVE_ENV = "TEXTCLF_20NG_ARCHIVE"
DATA_FLAGS = ("data", "test_data", "text_column", "label_column", "categories", "remove")
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TrainingInterrupted as exc:
        print(f"textclf: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("textclf: aborted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TextclfError as exc:
        print(f"textclf: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textclf",
        description="Train, evaluate, query and serve TF-IDF + MLP text classifiers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    from service.cli import register  # lazy: keeps `train` free of web imports

    register(sub)
    return parser


# --- train ------------------------------------------------------------------------------------


def _add_train(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model and write its artifact folder",
        description="Train a model (default: all 20 Newsgroups labels) and write "
        "the artifact to --out, then print test metrics.",
    )
    p.add_argument("--out", type=Path, required=True, help="artifact folder to write")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing artifact at --out (only once training finished)",
    )
    p.add_argument("--name", default="textclf-model", help="model name recorded in the artifact")
    _add_data_options(p)
    defaults_f, defaults_t = FeatureConfig(), TrainConfig()
    f = p.add_argument_group("features (TF-IDF)")
    f.add_argument(
        "--ngram-max",
        type=int,
        default=defaults_f.ngram_range[1],
        help="longest word n-gram (default %(default)s)",
    )
    f.add_argument(
        "--min-df",
        type=float,
        default=defaults_f.min_df,
        help="drop terms in fewer documents (count if >= 1, else fraction)",
    )
    f.add_argument(
        "--max-df",
        type=float,
        default=defaults_f.max_df,
        help="drop terms in a larger fraction of documents (default %(default)s)",
    )
    f.add_argument(
        "--max-features",
        type=int,
        default=defaults_f.max_features,
        help="keep the most frequent terms (default %(default)s; 0 = all)",
    )
    f.add_argument("--no-sublinear-tf", action="store_true", help="use raw term counts")
    f.add_argument("--stop-words", choices=["english"], default=None)
    f.add_argument(
        "--subject-weight",
        type=float,
        default=defaults_f.subject_weight,
        help="weight of the separate Subject: line features (default %(default)s; 0 = off)",
    )
    f.add_argument(
        "--bigram-min-df",
        type=int,
        default=defaults_f.bigram_min_df,
        help="word pairs in at least this many training texts feed a second naive Bayes term, "
        "kept only if it lowers validation log-loss by --bigram-min-gain (default %(default)s; "
        "0 = off)",
    )
    t = p.add_argument_group("training")
    t.add_argument(
        "--hidden",
        default=",".join(map(str, defaults_t.hidden)),
        help="hidden layer widths, comma-separated (default %(default)s)",
    )
    t.add_argument("--dropout", type=float, default=defaults_t.dropout)
    t.add_argument("--epochs", type=int, default=defaults_t.epochs, help="maximum epochs")
    t.add_argument("--batch-size", type=int, default=defaults_t.batch_size)
    t.add_argument("--lr", type=float, default=defaults_t.lr)
    t.add_argument(
        "--weight-decay",
        type=float,
        default=defaults_t.weight_decay,
        help="decoupled weight decay (AdamW; lazy on the first layer)",
    )
    t.add_argument("--label-smoothing", type=float, default=defaults_t.label_smoothing)
    t.add_argument(
        "--patience",
        type=int,
        default=defaults_t.patience,
        help="epochs without validation improvement before stopping",
    )
    t.add_argument(
        "--naive-bayes-alpha",
        type=float,
        default=defaults_t.naive_bayes_alpha,
        help="smoothing of the naive Bayes term added to the logits, weighted on validation "
        "(default %(default)s; 0 = none)",
    )
    t.add_argument(
        "--bigram-min-gain",
        type=float,
        default=defaults_t.bigram_min_gain,
        help="share of the validation log-loss the word-pair term must save to be kept "
        "(default %(default)s)",
    )
    t.add_argument(
        "--no-refit",
        action="store_true",
        help="ship the model trained on the training split alone instead of retraining on "
        "training + validation for the epoch count validation chose",
    )
    t.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    t.add_argument("--seed", type=int, default=defaults_t.seed)
    t.add_argument(
        "--threads",
        type=int,
        default=defaults_t.threads,
        help="torch CPU threads (default %(default)s: fastest for this narrow model "
        "and robust on a busy machine)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from textclf.metrics import format_report  # lazy: torch loads only when needed
    from textclf.pipeline import train_artifact

    config = _run_config(args)
    with _stop_on_signals() as stop:
        report = train_artifact(
            config, args.out, overwrite=args.overwrite, progress=not args.quiet, should_stop=stop
        )
    if args.json:
        print(
            json.dumps(
                {"path": str(report.path), "metrics": report.metrics, "timings": report.timings}
            )
        )
        return 0
    print(f"model written to {report.path} ({report.timings['total']:.1f}s)")
    val = report.metrics["validation"]
    print(f"validation: accuracy {val['accuracy']:.4f}  macro-F1 {val['macro_f1']:.4f}")
    if "test" in report.metrics:
        print(format_report(report.metrics["test"], title="test set:"))
    return 0


def _run_config(args: argparse.Namespace) -> RunConfig:
    min_df = int(args.min_df) if args.min_df >= 1 else args.min_df
    features = FeatureConfig(
        ngram_range=(1, args.ngram_max),
        min_df=min_df,
        max_df=args.max_df,
        max_features=args.max_features or None,
        sublinear_tf=not args.no_sublinear_tf,
        stop_words=args.stop_words,
        subject_weight=args.subject_weight,
        bigram_min_df=args.bigram_min_df,
    )
    train = TrainConfig(
        hidden=_ints(args.hidden, "--hidden"),
        dropout=args.dropout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        naive_bayes_alpha=args.naive_bayes_alpha,
        refit=not args.no_refit,
        bigram_min_gain=args.bigram_min_gain,
        device=args.device,
        seed=args.seed,
        threads=args.threads,
    )
    return RunConfig(data=_data_config(args), features=features, train=train, name=args.name)


class _Stop:
    """First SIGINT/SIGTERM asks training to stop at the next batch; a second one aborts now."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{signal.Signals(signum).name}: stopping; no artifact will be written "
            "(press again to abort at once)",
            file=sys.stderr,
        )


class _stop_on_signals:
    def __enter__(self) -> _Stop:
        self.stop = _Stop()
        self.previous = {
            s: signal.signal(s, self.stop.handle) for s in (signal.SIGINT, signal.SIGTERM)
        }
        return self.stop

    def __exit__(self, *exc: object) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


# --- evaluate -----------------------------------------------------------------------------------


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on a labelled test set",
        description="Reproduce the metrics report on a test set: 20 Newsgroups' "
        "test split, --test-data, or (given only --data) the whole of that file. "
        "With no data options, the data recorded in the artifact.",
    )
    p.add_argument("model", type=Path, help="artifact folder")
    _add_data_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from textclf.data import load_test
    from textclf.metrics import classification_report, format_report
    from textclf.predictor import load

    predictor = load(args.model, threads=1)
    config = _evaluation_data(args, predictor.artifact.manifest)
    corpus, description = load_test(config)
    probs = predictor.predict_proba(corpus.texts)
    predicted = [predictor.labels[i] for i in probs.argmax(1)]
    report = classification_report(corpus.labels, predicted, predictor.labels)
    report["model"] = predictor.ref.model_dump()
    report["data"] = description
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report, title=f"{predictor.ref.name} ({predictor.ref.version})"))
    return 0


def _evaluation_data(args: argparse.Namespace, manifest: dict[str, Any]) -> DataConfig:
    """Flags if any data option was given, else the data recorded when the model was trained."""
    if any(getattr(args, name) is not None for name in DATA_FLAGS):
        return _data_config(args)
    recorded = dict(manifest.get("training_config", {}).get("data", {}))
    if not recorded:
        return _data_config(args)
    for key in ("data", "test_data"):
        if recorded.get(key) is not None:
            recorded[key] = Path(recorded[key])
    if recorded.get("categories") is not None:
        recorded["categories"] = tuple(recorded["categories"])
    recorded["remove"] = tuple(recorded.get("remove", ()))
    recorded["archive"] = _archive(args)
    return DataConfig(**recorded)


# --- predict ------------------------------------------------------------------------------------


def _add_predict(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="classify texts, printing JSON lines",
        description="Classify the given texts, or lines from standard input "
        "(plain text, or JSON lines with a 'text' field); prints one JSON object "
        "per text.",
    )
    p.add_argument("model", type=Path, help="artifact folder")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--top-k", type=int, default=1, help="labels per text (default 1)")
    p.add_argument("--batch-size", type=int, default=256, help="texts scored at once from stdin")
    p.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    from textclf.predictor import load

    if args.top_k < 1:
        print("textclf: error: --top-k must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    predictor = load(args.model, threads=1)
    for chunk in _chunks(args.texts or _stdin_texts(), args.batch_size):
        for prediction in predictor.predict(chunk, top_k=args.top_k):
            print(prediction.model_dump_json())
    return 0


def _stdin_texts() -> Iterator[str]:
    for number, line in enumerate(sys.stdin, start=1):
        line = line.rstrip("\n")
        if line.lstrip().startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _input_error(number, f"invalid JSON ({exc})") from None
            if not isinstance(record.get("text"), str):
                raise _input_error(number, "JSON line has no string 'text' field")
            yield record["text"]
        else:
            yield line


def _input_error(line: int, message: str) -> TextclfError:
    return TextclfError(f"standard input, line {line}: {message}")


def _chunks(items: Sequence[str] | Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- shared data options ------------------------------------------------------------------------


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (default: 20 Newsgroups, bydate split)")
    g.add_argument(
        "--data",
        type=Path,
        default=None,
        help="your own labelled data: CSV, TSV, JSON Lines, or a folder of label sub-folders",
    )
    g.add_argument(
        "--test-data",
        type=Path,
        default=None,
        help="separate test file (default: a stratified hold-out of --data)",
    )
    g.add_argument("--text-column", default=None, help="text column/field (default: text)")
    g.add_argument("--label-column", default=None, help="label column/field (default: label)")
    g.add_argument(
        "--categories",
        default=None,
        help="20 Newsgroups categories, comma-separated (e.g. sci.space,comp.graphics)",
    )
    g.add_argument(
        "--remove",
        default=None,
        help=f"strip parts of 20 Newsgroups posts: {','.join(REMOVABLE_PARTS)}",
    )
    g.add_argument(
        "--archive",
        type=Path,
        default=None,
        help=f"local 20news-bydate.tar.gz or its extracted folder (env {ARCHIVE_ENV})",
    )


def _data_config(args: argparse.Namespace) -> DataConfig:
    defaults = DataConfig()
    return DataConfig(
        data=args.data,
        test_data=args.test_data,
        text_column=args.text_column or defaults.text_column,
        label_column=args.label_column or defaults.label_column,
        categories=tuple(_csv(args.categories)) if args.categories else None,
        remove=tuple(_csv(args.remove)) if args.remove else (),
        archive=_archive(args),
        seed=getattr(args, "seed", defaults.seed),
    )


def _archive(args: argparse.Namespace) -> Path | None:
    if args.archive is not None:
        return Path(args.archive)
    env = os.environ.get(ARCHIVE_ENV)
    return Path(env) if env else None


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _ints(value: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in _csv(value))
    except ValueError:
        raise TextclfError(f"{flag} takes comma-separated integers, got {value!r}") from None
