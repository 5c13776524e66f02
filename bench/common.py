"""What every benchmark shares: data and model helpers, the machine record, tables, targets, JSON.

Each benchmark returns a `Result` (tables of figures plus the issue's targets it checks);
`finish` prints it and writes `bench/results/NAME.json` with the machine it ran on, the command
that produced it and the load average around it, because on a shared 2-core machine a number
without its context is not worth keeping.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"  # gitignored: figures and cached models live here
MODELS = RESULTS / "models"
ARCHIVE_ENV = "TEXTCLF_20NG_ARCHIVE"
REMOVED = ("headers", "footers", "quotes")
SETTINGS: dict[str, tuple[str, ...]] = {"kept": (), "removed": REMOVED}
_VERSIONED = (
    *("torch", "scikit-learn", "numpy", "scipy"),
    *("fastapi", "starlette", "uvicorn", "pydantic", "uvloop", "httptools"),
)


# --- reporting -----------------------------------------------------------------------------------


@dataclass
class Target:
    """One of the issue's targets: `value` compared with `limit` (`op` is '<=' or '>=')."""

    name: str
    value: float
    limit: float
    op: str
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class Table:
    """Rows of one printed table; `columns` maps a row key to its header (printed in order)."""

    title: str
    columns: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Result:
    name: str
    tables: list[Table]
    targets: list[Target] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class CpuWatch:
    """How much CPU other processes took while a benchmark ran, the context its timings need on
    a shared machine: busy time from /proc/stat minus this process's and its reaped children's
    (servers, wrk and training runs are all children, waited for before the end)."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.load = os.getloadavg()
        self.busy = _busy_seconds()
        self.ours = _our_cpu_seconds()

    def report(self) -> dict[str, Any]:
        wall = time.time() - self.wall
        others = (_busy_seconds() - self.busy) - (_our_cpu_seconds() - self.ours)
        return {
            "seconds": round(wall, 1),
            "load_average_before": self.load,
            "load_average_after": os.getloadavg(),
            "other_processes_cores": round(max(others, 0.0) / wall, 2) if wall > 0 else 0.0,
        }


def _busy_seconds() -> float:
    """Non-idle CPU seconds of the whole machine (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _our_cpu_seconds() -> float:
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def wait_for_quiet(max_wait_s: float, threshold: float = 0.3, sample_s: float = 5.0) -> float:
    """Wait (up to `max_wait_s`) until other processes use less than `threshold` cores over a
    `sample_s` window; returns the last reading. Timings taken beside someone's test run are
    not the machine's."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy = _busy_seconds()
        time.sleep(sample_s)
        others = (_busy_seconds() - busy) / sample_s
        if others < threshold or time.monotonic() >= deadline:
            return others
        print(f"... other processes use {others:.2f} cores; waiting", file=sys.stderr, flush=True)


def finish(result: Result, watch: CpuWatch) -> Path:
    """Print `result` and write it, with the machine and the command, to the results folder."""
    for table in result.tables:
        print(format_table(table))
        print()
    if result.targets:
        print(format_table(targets_table(result.targets)))
        print()
    context = watch.report()
    print(
        f"other processes used {context['other_processes_cores']:.2f} of "
        f"{len(os.sched_getaffinity(0))} cores on average during this run "
        f"(load average {context['load_average_before'][0]:.2f} -> "
        f"{context['load_average_after'][0]:.2f})"
    )
    payload = {
        "benchmark": result.name,
        "command": command_line(),
        "started": datetime.fromtimestamp(watch.wall, UTC).isoformat(timespec="seconds"),
        "context": context,
        "machine": machine(),
        "tables": [asdict(t) for t in result.tables],
        "targets": [t.to_dict() for t in result.targets],
        "details": result.details,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{result.name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def median_row(rows: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The row with the median `key` (the lower one of an even count): one real measurement,
    so its figures agree with each other, where a median per column would mix rounds."""
    ranked = sorted(rows, key=lambda r: r[key])
    return ranked[(len(ranked) - 1) // 2]


def targets_table(targets: Sequence[Target]) -> Table:
    rows = [
        {
            "name": t.name,
            "value": f"{fmt(t.value)} {t.unit}".strip(),
            "limit": f"{t.op} {fmt(t.limit)} {t.unit}".strip(),
            "met": "met" if t.met else "MISSED",
        }
        for t in targets
    ]
    columns = {"name": "target", "value": "measured", "limit": "target", "met": ""}
    return Table("targets", columns, rows)


def format_table(table: Table) -> str:
    """A fixed-width text table; floats get 3-4 significant figures."""
    headers = list(table.columns.values())
    cells = [[fmt(row.get(key, "")) for key in table.columns] for row in table.rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    lines = [table.title, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def fmt(value: Any) -> str:
    """A figure for a table: ints as they are, floats to 3-4 significant figures, "-" for
    a figure a contender has not got."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value == 0 or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if abs(value) >= 0.1 else f"{value:.4f}"


@contextmanager
def step(message: str) -> Iterator[None]:
    """Say what a long step is doing and how long it took (on stderr, so tables stay clean)."""
    print(f"... {message}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    yield
    print(f"    done in {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)


def command_line() -> str:
    return "python -m bench " + shlex.join(sys.argv[1:])


# --- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU, cores, memory, library versions and the exact code measured (commit + dirty files)."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _VERSIONED},
        "wrk": _wrk_version(),
        "git": _git_state(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _wrk_version() -> str | None:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return None
    return (out.stdout or out.stderr).split("[")[0].strip() or None


def _git_state() -> dict[str, Any]:
    """The commit, and the library files that differ from it: other engineers edit the tree
    while benchmarks run, so the commit alone may not be what was measured."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return run.stdout.strip()

    dirty = git("status", "--porcelain", "--", "textclf", "service", "training", "bench")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": dirty.splitlines()}


# --- data and models -----------------------------------------------------------------------------


def archive() -> Path | None:
    """The local 20 Newsgroups archive: $TEXTCLF_20NG_ARCHIVE, else ../shared/data beside the
    checkout (as the Makefile does), else None (scikit-learn's cached download)."""
    env = os.environ.get(ARCHIVE_ENV)
    if env:
        return Path(env)
    beside = ROOT.parent / "shared" / "data" / "20news-bydate.tar.gz"
    return beside if beside.exists() else None


def default_run_config(setting: str = "kept") -> Any:
    """`textclf train`'s default run on 20 Newsgroups with headers kept or removed."""
    from textclf.config import DataConfig, RunConfig

    return RunConfig(data=DataConfig(archive=archive(), remove=SETTINGS[setting]))


def default_model(setting: str = "kept", *, retrain: bool = False) -> tuple[Path, dict[str, Any]]:
    """The default model for `setting`, trained once and cached under bench/results/models.

    The cache key covers the run config and the library's source, so a benchmark never measures
    a model that the current code would not train. Returns the folder and the training report.
    """
    from textclf.config import to_dict
    from textclf.pipeline import train_artifact

    config = default_run_config(setting)
    key = _digest(json.dumps(to_dict(config), sort_keys=True) + _library_fingerprint())
    out = MODELS / f"default-{setting}-{key}"
    report_path = out.with_suffix(".train.json")
    if out.exists() and report_path.exists() and not retrain:
        return out, json.loads(report_path.read_text())
    MODELS.mkdir(parents=True, exist_ok=True)
    _prune(f"default-{setting}-")
    with step(f"training the default model ({setting}) into {out.relative_to(ROOT)}"):
        # Epoch bars only on a terminal: in a log file they are kilobytes of carriage returns.
        report = train_artifact(config, out, overwrite=True, progress=sys.stderr.isatty())
    saved = {"metrics": report.metrics, "timings": report.timings, "history": report.history}
    report_path.write_text(json.dumps(saved, indent=2) + "\n")
    return out, saved


def _prune(prefix: str) -> None:
    """Drop models cached for older library code: they would never be used again."""
    for stale in MODELS.glob(prefix + "*"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()


def _library_fingerprint() -> str:
    files = sorted((ROOT / "textclf").glob("*.py"))
    return _digest("".join(f.name + f.read_text() for f in files))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_splits(setting: str = "kept") -> Any:
    """The exact splits `textclf train` uses (same seed, same validation carve-out)."""
    from textclf.data import load_splits as _load

    return _load(default_run_config(setting).data)


# --- timing and processes ------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, like numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def free_port() -> int:
    """A port nobody listens on right now (loopback only)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc (uvicorn workers are children of a supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def memory_mib(pid: int) -> dict[str, float]:
    """RSS and PSS of one process in MiB (PSS splits shared pages, so it sums honestly)."""
    out = {"rss": 0.0, "pss": 0.0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key = line.split(":", 1)[0].lower()
            if key in out:
                out[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def rss_mib(pid: int) -> float:
    """One process's RSS in MiB from /proc/PID/statm: a counter read, where `memory_mib`'s
    smaps_rollup walks the page tables (~6 ms for a process holding torch, under the lock the
    process's own page faults need), too costly to sample a running contender with."""
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds consumed so far by `pids`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total
