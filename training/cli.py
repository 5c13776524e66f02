"""`textclf train | evaluate | predict | serve`: flags -> typed config -> library call -> output.

This is the edge where the environment is read (TEXTCLF_20NG_ARCHIVE) and where typed errors
become one-line messages and exit codes instead of stack traces.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

# Light modules only (no torch, numpy, scikit-learn): `textclf --help` must work without the
# training extra, and each command says which extra it needs (`require`) before importing it.
from textclf.config import (
    ARCHIVE_ENV,
    DataConfig,
    FeatureConfig,
    RunConfig,
    TrainConfig,
    without_none,
)
from textclf.errors import TextclfError, TrainingInterrupted
from textclf.extras import require

if TYPE_CHECKING:  # pydantic's schemas: ~0.15 s for every spawned batch worker (spawn imports us)
    from textclf.schemas import Prediction

# The data options `evaluate` takes too (with --archive); any of them replaces the recorded data.
DATA_FLAGS = ("data", "test_data", "text_column", "label_column", "categories", "remove")
DATA_GROUP = "data (default: 20 Newsgroups, bydate split)"
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand; `serve`'s settings flags only when `command` is serve or absent
    (building them imports pydantic-settings, ~0.2 s of every `textclf predict` or `batch`)."""
    parser = argparse.ArgumentParser(
        prog="textclf",
        description="Train, evaluate, query and serve TF-IDF + MLP text classifiers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    from training.batch_cli import register as register_batch  # lazy, like serve

    register_batch(sub)
    from service.cli import register  # lazy: keeps `train` free of web imports

    register(sub, settings=command in (None, "serve"))
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
    p.add_argument("--name", default=RunConfig().name, help="model name recorded in the artifact")
    # --seed (training group) seeds the data splits too: one seed for the whole run.
    _add_options(p.add_argument_group(DATA_GROUP), DataConfig, skip=("seed",))
    features = p.add_argument_group("features (TF-IDF)")
    _add_options(features, FeatureConfig)
    features.add_argument(
        "--ngram-max",
        dest="ngram_range",
        type=_one_to,
        default=argparse.SUPPRESS,
        metavar="N",
        help="the same as --ngram-range 1 N",
    )
    t = p.add_argument_group("training")
    _add_options(t, TrainConfig, also=DataConfig)
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    require("train", "train")
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
    return RunConfig(
        data=_data_config(args),
        features=_config(FeatureConfig, args),
        train=_config(TrainConfig, args),
        name=args.name,
    )


def _one_to(text: str) -> tuple[int, int]:
    try:
        return 1, int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None


# --- flags derived from the config dataclasses -------------------------------------------------


def _add_options(
    group: Any,
    cls: type[Any],
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    also: type[Any] | None = None,
    suppress: bool = False,
) -> None:
    """One flag per field of config `cls` (all, `only` some, less `skip`), typed from its
    annotation, documented from its metadata (and from the field of the same name in `also`,
    which the flag sets too). With `suppress`, flags not given stay out of the namespace, so a
    command can tell "not given" from "given the default"."""
    hints = get_type_hints(cls)
    shared = {f.name: f for f in dataclasses.fields(also)} if also else {}
    for f in dataclasses.fields(cls):
        if (only and f.name not in only) or f.name in skip:
            continue
        default = argparse.SUPPRESS if suppress else f.default
        text = _help(f) + (f"; {_help(shared[f.name])}" if f.name in shared else "")
        action = group.add_argument(
            _flag(f.name), dest=f.name, default=default, help=text, **_typed(f, hints[f.name])
        )
        shown = _shown(f, hints[f.name])
        if shown is not None and "(default:" not in action.help:  # BooleanOptionalAction adds it
            action.help += f" (default: {shown})"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _typed(f: dataclasses.Field[Any], hint: Any) -> dict[str, Any]:
    """argparse's type, nargs, choices or action for a field, read off its annotation."""
    base, optional = without_none(hint)
    meta, kw = f.metadata, {"metavar": f.metadata.get("metavar")}
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if get_origin(base) is Literal:
        return {"choices": get_args(base)}
    if get_origin(base) is tuple:
        items = get_args(base)
        if items[-1] is Ellipsis:  # comma-separated, parsed by _value (errors name the flag)
            return kw
        return {**kw, "nargs": len(items), "type": items[0]}
    convert: Callable[[str], Any] = _count_or_fraction if base == int | float else base
    if optional and "none" in meta:
        convert = _or_none(convert)
    if "choices" in meta:
        choices = (*meta["choices"], *([None] if optional else []))
        kw = {"choices": choices, "metavar": "{" + ",".join(map(_shown_value, choices)) + "}"}
    return {**kw, "type": convert}


def _help(f: dataclasses.Field[Any]) -> str:
    text: str = f.metadata["help"]
    if "choices" in f.metadata and isinstance(f.default, tuple):  # argparse checks no list
        text += f" ({', '.join(f.metadata['choices'])})"
    if "none" in f.metadata:
        text += f"; none: {f.metadata['none']}"
    return text.replace("%", "%%")


def _shown(f: dataclasses.Field[Any], hint: Any) -> str | None:
    """The default as a user would type it; None where the help says what no value means."""
    if f.default is None and "none" not in f.metadata:
        return None
    if f.default == ():
        return "nothing"
    if isinstance(f.default, tuple):
        listed = get_args(without_none(hint)[0])[-1] is Ellipsis
        return ("," if listed else " ").join(map(str, f.default))
    return _shown_value(f.default)


def _shown_value(value: Any) -> str:
    return "none" if value is None else str(value)


def _count_or_fraction(text: str) -> int | float:
    value = float(text)
    return int(value) if value >= 1 else value


def _or_none(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names it in errors
    return parse


def _config(cls: type[Any], args: argparse.Namespace, **overrides: Any) -> Any:
    """Config `cls` from the flags in `args` (the dataclass defaults for those not there)."""
    hints = get_type_hints(cls)
    values = {
        f.name: _value(f, hints[f.name], getattr(args, f.name))
        for f in dataclasses.fields(cls)
        if hasattr(args, f.name)
    }
    return cls(**{**values, **overrides})


def _value(f: dataclasses.Field[Any], hint: Any, raw: Any) -> Any:
    """A parsed flag as the field's type: nargs lists as tuples, comma lists split."""
    base, optional = without_none(hint)
    if isinstance(raw, list):
        return tuple(raw)
    if get_origin(base) is not tuple or not isinstance(raw, str):
        return raw
    item = get_args(base)[0]
    try:
        parts = tuple(item(part) for part in _csv(raw))
    except ValueError:
        raise TextclfError(
            f"{_flag(f.name)} takes comma-separated {item.__name__} values, got {raw!r}"
        ) from None
    return None if optional and not parts else parts


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
    group = p.add_argument_group(DATA_GROUP)
    _add_options(group, DataConfig, only=(*DATA_FLAGS, "archive"), suppress=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    require("train", "evaluate")
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
    if any(hasattr(args, name) for name in DATA_FLAGS):
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
    p.add_argument(
        "--explain",
        action="store_true",
        help="explain each prediction by its strongest terms (a table; JSON lines with --json)",
    )
    p.add_argument(
        "--explain-terms", type=int, default=10, help="terms per explanation, 1 to 100 (default 10)"
    )
    p.add_argument("--json", action="store_true", help="with --explain: JSON lines, not a table")
    p.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    require("train", "predict")
    from textclf.predictor import load

    if args.top_k < 1:
        print("textclf: error: --top-k must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    if args.explain and not 1 <= args.explain_terms <= 100:
        print("textclf: error: --explain-terms must be 1 to 100", file=sys.stderr)
        return EXIT_ERROR
    predictor = load(args.model, threads=1)
    for chunk in _chunks(args.texts or _stdin_texts(), args.batch_size):
        predictions = predictor.predict(
            chunk, top_k=args.top_k, explain=args.explain, explain_terms=args.explain_terms
        )
        for text, prediction in zip(chunk, predictions, strict=True):
            table = args.explain and not args.json
            print(_explanation_table(text, prediction) if table else prediction.model_dump_json())
    return 0


def _explanation_table(text: str, prediction: Prediction) -> str:
    """A prediction and its terms for a person: weight, term, and the words as written."""
    excerpt = " ".join(text.split())
    lines = [f"{prediction.label}  {prediction.score:.4f}  {excerpt[:60]}"]
    lines.append(f"  {'weight':>10}  {'term':<24}  occurrences")
    for term in prediction.explanation or []:
        seen = ", ".join(dict.fromkeys(repr(text[s:e]) for s, e in term.spans))
        lines.append(f"  {term.weight:>+10.2e}  {term.term:<24}  {seen}")
    return "\n".join(lines) + "\n"


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


def _data_config(args: argparse.Namespace) -> DataConfig:
    data: DataConfig = _config(DataConfig, args, archive=_archive(args))
    return data


def _archive(args: argparse.Namespace) -> Path | None:
    """--archive, else the environment: the one setting read from outside the flags."""
    if getattr(args, "archive", None) is not None:
        return Path(args.archive)
    env = os.environ.get(ARCHIVE_ENV)
    return Path(env) if env else None


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
