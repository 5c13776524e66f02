"""`python -m bench NAME [options]`, `python -m bench all` and `python -m bench report`.

One command per benchmark, so a user can rerun exactly the figure they doubt. `all` runs them in
an order that reuses the cached default model; `report` renders the saved JSON as markdown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from bench import accuracy, footprint, http_load, predict_speed, report, soak, train_speed
from bench.common import CpuWatch, finish, wait_for_quiet

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m for m in (accuracy, train_speed, predict_speed, footprint, http_load, soak)
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.name == "report":
        print(report.render())
        return 0
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    for name in names:
        sub = args if args.name != "all" else _defaults(name, args.quick)
        if args.wait_quiet:
            others = wait_for_quiet(args.wait_quiet)
            print(f"... other processes use {others:.2f} cores", file=sys.stderr, flush=True)
        print(f"== {name} ==", file=sys.stderr, flush=True)
        watch = CpuWatch()
        finish(BENCHMARKS[name].run(sub), watch)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each benchmark, wait up to SECONDS for other processes to go quiet",
    )
    sub = parser.add_subparsers(dest="name", required=True, metavar="NAME")
    for name, module in BENCHMARKS.items():
        p = sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        module.add_arguments(p)
    p = sub.add_parser("all", help="every benchmark, one after another, with default options")
    p.add_argument("--quick", action="store_true", help="short durations (a smoke test)")
    sub.add_parser("report", help="print the saved results as markdown tables")
    return parser


def _defaults(name: str, quick: bool) -> argparse.Namespace:
    """The options a benchmark gets under `all`: its defaults, or its --quick ones."""
    parser = argparse.ArgumentParser()
    BENCHMARKS[name].add_arguments(parser)
    return parser.parse_args(["--quick"] if quick and _has_quick(parser) else [])


def _has_quick(parser: argparse.ArgumentParser) -> bool:
    return any("--quick" in action.option_strings for action in parser._actions)


if __name__ == "__main__":
    sys.exit(main())
