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
    """Every target first (one table), then the machine, then each benchmark's tables."""
    results = [
        json.loads((RESULTS / f"{name}.json").read_text())
        for name in ORDER
        if (RESULTS / f"{name}.json").exists()
    ]
    if not results:
        return "no results yet: run `python -m bench all`"
    newest = max(results, key=lambda r: str(r["started"]))
    sections = ["## Results", *(_section(r) for r in results)]
    return "\n\n".join([summary(results), _machine(newest["machine"]), *sections])


def summary(results: list[dict[str, Any]]) -> str:
    """All targets of all benchmarks in one table, each with the benchmark that checks it."""
    rows = [
        {**_target_row(t), "benchmark": f"`{r['benchmark']}`"}
        for r in results
        for t in r["targets"]
    ]
    columns = {"benchmark": "benchmark", "name": "target", "value": "measured"}
    columns.update({"limit": "target", "met": ""})
    return markdown(Table("every target, latest run of each benchmark", columns, rows))


def _target_row(raw: dict[str, Any]) -> dict[str, Any]:
    target = Target(raw["name"], raw["value"], raw["limit"], raw["op"], raw.get("unit", ""))
    row: dict[str, Any] = targets_table([target]).rows[0]
    return row


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
    git = result["machine"]["git"]
    dirty = f" plus {len(git['dirty'])} uncommitted file(s)" if git["dirty"] else ""
    lines = [
        f"### `{result['benchmark']}`",
        "",
        f"`{result['command']}` at {result['started']} ({context['seconds']:.0f} s, commit "
        f"{git['commit']}{dirty}; other processes used "
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
