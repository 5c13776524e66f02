"""`python -m bench report`: the saved results as markdown, for BENCHMARKS.md.

Rendering from the JSON rather than copying numbers by hand keeps the document and the results
in agreement; the prose around the tables is written by hand.
"""

from __future__ import annotations

import json
from typing import Any

from bench.common import RESULTS, Table, Target, fmt, targets_table

ORDER = ("accuracy", "train_speed", "predict_speed", "footprint", "http_load", "soak")


def render() -> str:
    parts = []
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if path.exists():
            parts.append(_section(json.loads(path.read_text())))
    if not parts:
        return "no results yet: run `python -m bench all`"
    newest = max(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime)
    return "\n\n".join([_machine(json.loads(newest.read_text())["machine"]), *parts])


def _machine(machine: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    return "\n".join(
        [
            "## Machine",
            "",
            f"- CPU: {machine['cpu']}, {machine['usable_cores']} usable cores",
            f"- memory: {machine['memory_gib']} GiB; {machine['os']}; Python {machine['python']}",
            f"- {versions}; {machine['wrk'] or 'no wrk'}",
        ]
    )


def _section(result: dict[str, Any]) -> str:
    context = result["context"]
    lines = [
        f"### `{result['benchmark']}`",
        "",
        f"`{result['command']}` at {result['started']} ({context['seconds']:.0f} s, commit "
        f"{result['machine']['git']['commit']}; other processes used "
        f"{context['other_processes_cores']:.2f} cores on average, load average "
        f"{context['load_average_before'][0]:.2f} -> {context['load_average_after'][0]:.2f})",
    ]
    for raw in result["tables"]:
        lines += ["", markdown(Table(raw["title"], raw["columns"], raw["rows"]))]
    if result["targets"]:
        targets = [
            Target(t["name"], t["value"], t["limit"], t["op"], t.get("unit", ""))
            for t in result["targets"]
        ]
        lines += ["", markdown(targets_table(targets))]
    return "\n".join(lines)


def markdown(table: Table) -> str:
    headers = list(table.columns.values())
    out = [f"**{table.title}**", "", "| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    for row in table.rows:
        out.append("| " + " | ".join(fmt(row.get(key, "")) for key in table.columns) + " |")
    return "\n".join(out)
