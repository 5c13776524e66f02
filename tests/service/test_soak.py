"""A few seconds of the soak in bench/soak.py (`python -m bench soak` runs a minute): 32 clients
against a real `textclf serve`; every answer right, and the server's memory flat."""

from __future__ import annotations

from pathlib import Path

from bench.soak import GROWTH_LIMIT_PCT, measure
from tests.service.faults import ServeProcess


def test_a_short_soak_has_no_errors_and_flat_memory(trained_model_dir: Path) -> None:
    with ServeProcess(trained_model_dir) as server:
        soak = measure(server.url, lambda: [server.pid], connections=32, seconds=4, warmup=2)
        output = server.output

    print(soak.summary())
    assert soak.requests > 0
    assert soak.error_count == 0, soak.errors
    assert soak.growth_pct < GROWTH_LIMIT_PCT, soak.summary()
    assert "Traceback" not in output
