"""`python -m bench NAME [options]`, `python -m bench all` and `python -m bench report`.

One command per benchmark, so a user can rerun exactly the figure they doubt. `all` runs each in
its own process, in an order that reuses the cached default model; `report` renders the saved
JSON as markdown.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from types import ModuleType

from bench import (
    accuracy,
    batch,
    explain_speed,
    footprint,
    http_load,
    predict_speed,
    report,
    soak,
    train_speed,
)
from bench.common import ROOT, CpuWatch, finish, wait_for_quiet

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        *(accuracy, train_speed, predict_speed, footprint, http_load, soak, explain_speed),
        batch,
    )
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.name == "report":
        print(report.render())
        return 0
    if args.name == "all":
        return _run_all(args.quick, args.wait_quiet)
    if args.wait_quiet:
        others = wait_for_quiet(args.wait_quiet)
        print(f"... other processes use {others:.2f} cores", file=sys.stderr, flush=True)
    print(f"== {args.name} ==", file=sys.stderr, flush=True)
    watch = CpuWatch()
    finish(BENCHMARKS[args.name].run(args), watch)
    return 0


def _run_all(quick: bool, wait_quiet: float) -> int:
    """Each benchmark in a fresh process, so that process-wide state one sets (torch's thread
    count, imported modules, memory high-water marks) cannot change the next one's figures."""
    failed = []
    for name in BENCHMARKS:
        command = [sys.executable, "-m", "bench"]
        if wait_quiet:
            command += ["--wait-quiet", f"{wait_quiet:g}"]
        command.append(name)
        if quick and _has_quick(name):
            command.append("--quick")
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


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


def _has_quick(name: str) -> bool:
    parser = argparse.ArgumentParser()
    BENCHMARKS[name].add_arguments(parser)
    return any("--quick" in action.option_strings for action in parser._actions)


if __name__ == "__main__":
    sys.exit(main())
