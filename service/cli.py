"""`textclf serve DIR` (and `python -m service DIR`): check the model loads, then run uvicorn.

Imports of uvicorn, FastAPI and torch happen inside `run`, so registering the subcommand keeps
`textclf --help` and `textclf train` fast, and a client-only install can still show the help.
The settings' flags come from `Settings` itself (`service.flags`).
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

from textclf.extras import require

EXIT_ERROR = 1

DESCRIPTION = """\
Serve a model folder over HTTP: POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics,
OpenAPI docs at /docs. Every setting below can also come from a TEXTCLF_<NAME> environment
variable (a flag wins); the API key only from TEXTCLF_API_KEY."""


def register(subparsers: argparse._SubParsersAction, *, settings: bool = True) -> None:
    """Add the `serve` subcommand to the `textclf` command line; without `settings`, only its
    name and help (for `textclf --help` while another subcommand runs)."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if settings:
        add_arguments(parser)
        parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's own flags, then one per setting (those need pydantic-settings: without
    the serve extra they are taken unread, so that `run` can name the extra to install)."""
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
        help="worker processes, serving one socket and reloading and counting as one; the "
        "weights are memory-mapped, so they share them (default: %(default)s)",
    )
    try:
        from service.flags import add_settings_flags
    except ImportError:  # no pydantic-settings: take any flags, and `run` names the extra
        parser.add_argument("settings", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    add_settings_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns a non-zero exit code, with a message, if the model or the
    settings are unusable, before any worker starts."""
    require("serve", "serve")
    from pydantic import ValidationError

    from service.flags import as_environment, settings_overrides
    from service.settings import Settings

    overrides: dict[str, Any] = {"model_path": args.model_path, **settings_overrides(args)}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"textclf serve: error: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_ERROR

    from service.app import create_app
    from service.holder import load_scorer

    try:
        scorer = load_scorer(settings)
    except Exception as exc:  # the loader's message is the useful part; no traceback
        print(f"textclf serve: error: cannot load the model: {exc}", file=sys.stderr)
        return EXIT_ERROR

    import uvicorn

    options: dict[str, Any] = {
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "log_config": _log_config(settings.log_level),
        "timeout_graceful_shutdown": 30,
        # Outlive the clients' idle timeouts (httpx: 5 s), so a client never sends on a kept-alive
        # connection the server is closing at that moment (seen as rare ReadErrors in the soak).
        "timeout_keep_alive": 65,
    }
    if args.workers == 1:
        app = create_app(settings, scorer=scorer)
        freeze_heap()
        signal.signal(signal.SIGTERM, exit_cleanly)
        uvicorn.run(app, host=args.host, port=args.port, **options)
        return 0
    # Workers are fresh processes: they rebuild the settings from the environment and load the
    # model themselves. Free the parent's copy first; the parent only supervises.
    scorer.close(wait=True)
    del scorer
    os.environ.update(as_environment(overrides))
    from service.supervisor import Supervisor

    supervisor = Supervisor(workers=args.workers, host=args.host, port=args.port, options=options)
    return supervisor.run()


def freeze_heap() -> None:
    """Move everything loaded so far (FastAPI, pydantic, an in-process model: ~260k long-lived
    objects) out of the cyclic collector's sight: every full collection walked them all (140-180
    ms pauses, the p99 tail under load). A process-wide switch, so it is thrown here, at the
    process's entry point, never by library code or an app factory."""
    gc.collect()
    gc.freeze()


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """uvicorn drains in-flight requests on SIGTERM, then raises the signal again, which would end
    a cleanly stopped server as killed by it (exit status 143): make that a plain exit 0."""
    raise SystemExit(0)


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
