"""`textclf serve DIR` (and `python -m service DIR`): check the model loads, then run uvicorn.

Imports of uvicorn, FastAPI and torch happen inside `run`, so registering the subcommand keeps
`textclf --help` and `textclf train` fast.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

EXIT_ERROR = 1
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand to the `textclf` command line."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


DESCRIPTION = """\
Serve a model folder over HTTP: POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics,
OpenAPI docs at /docs. Other settings come from TEXTCLF_* environment variables: TEXTCLF_API_KEY,
TEXTCLF_MAX_TEXTS, TEXTCLF_MAX_TEXT_CHARS, TEXTCLF_MAX_BODY_BYTES, TEXTCLF_CORS_ORIGINS, ..."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_path", metavar="DIR", type=Path, help="model folder to serve")
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes, each with its own copy of the model (default: %(default)s)",
    )
    parser.add_argument(
        "--scorer",
        choices=("process", "thread"),
        help="where each worker runs the model: a child process of its own (faster under "
        "concurrent load) or a thread of the worker (less memory); "
        "default: TEXTCLF_SCORER or process",
    )
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, help="default: TEXTCLF_LOG_LEVEL or info"
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log every request (default: TEXTCLF_ACCESS_LOG or off)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns a non-zero exit code, with a message, if the model or the
    settings are unusable, before any worker starts."""
    from pydantic import ValidationError

    from service.settings import Settings

    overrides: dict[str, Any] = {"model_path": args.model_path}
    if args.scorer is not None:
        overrides["scorer"] = args.scorer
    if args.log_level is not None:
        overrides["log_level"] = args.log_level
    if args.access_log is not None:
        overrides["access_log"] = args.access_log
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"textclf serve: error: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_ERROR

    from service.app import create_app
    from service.inference import load_predictor

    try:
        predictor = load_predictor(settings)
    except Exception as exc:  # the loader's message is the useful part; no traceback
        print(f"textclf serve: error: cannot load the model: {exc}", file=sys.stderr)
        return EXIT_ERROR

    import uvicorn

    from service.protocol import CoalescingHttpToolsProtocol

    # uvicorn drains in-flight requests on SIGTERM, then raises the signal again, which would end
    # a cleanly stopped server as killed by it (exit status 143): make that a plain exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "log_config": _log_config(settings.log_level),
        "timeout_graceful_shutdown": 30,
        # Outlive the clients' idle timeouts (httpx: 5 s), so a client never sends on a kept-alive
        # connection the server is closing at that moment (seen as rare ReadErrors in the soak).
        "timeout_keep_alive": 65,
        "http": CoalescingHttpToolsProtocol,  # one write per small response (service.protocol)
    }
    if args.workers == 1:
        uvicorn.run(create_app(settings, predictor=predictor), **options)
        return 0
    # Workers are fresh processes: they rebuild the settings from the environment and load the
    # model themselves. Free the parent's copy first; the parent only supervises.
    del predictor
    gc.collect()
    os.environ.update(_environment(overrides))
    uvicorn.run("service.app:create_app", factory=True, workers=args.workers, **options)
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _environment(overrides: dict[str, Any]) -> dict[str, str]:
    """The CLI's overrides as TEXTCLF_* variables, for worker processes to read."""
    env = {"TEXTCLF_MODEL_PATH": str(Path(overrides["model_path"]).resolve())}
    if "scorer" in overrides:
        env["TEXTCLF_SCORER"] = overrides["scorer"]
    if "log_level" in overrides:
        env["TEXTCLF_LOG_LEVEL"] = overrides["log_level"]
    if "access_log" in overrides:
        env["TEXTCLF_ACCESS_LOG"] = "true" if overrides["access_log"] else "false"
    return env


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus the service's own `textclf` logger, at the same level."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["textclf"] = {
        "handlers": ["default"],
        "level": "DEBUG" if level == "trace" else level.upper(),
        "propagate": False,
    }
    return config


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number
