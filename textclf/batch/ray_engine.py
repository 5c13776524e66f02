"""The batch job on Ray Data: `ray.data.read_*` -> `map_batches` over an actor pool that loads
the model once per actor -> the same rows as the local engine.

`predict_dataset(ds, model_path)` is the entry point for users already on Ray: it adds the
prediction columns to their dataset and leaves reading and writing (`ds.write_parquet(...)` to
shared storage) to them. The model folder must be readable from every node. `textclf batch
--engine ray` reads with Ray, scores on the pool, and streams the scored rows, in input order,
into the same single output file (and row-number ids) as the local engine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from textclf.batch.config import BatchConfig
from textclf.batch.rows import columns, csv_header, encode, prediction_rows
from textclf.batch.sinks import ParquetSink, Sink, TextSink
from textclf.errors import DataError

ERROR_COLUMN = "error"


class ScoreBatch:
    """Ray Data's callable class: the model is loaded once per actor, then scores batches (in
    NumPy, as the local engine's workers do: the same rows, and no torch import per actor)."""

    def __init__(self, model_path: str, text_column: str = "text", top_k: int = 1) -> None:
        from textclf import host

        self.model = host.load(model_path)
        host.one_blas_thread()  # an actor's own process, beside the others on the cores
        self.text_column, self.top_k = text_column, top_k

    def __call__(self, batch: Any) -> Any:
        import numpy as np

        texts = list(batch[self.text_column])
        good = [i for i, t in enumerate(texts) if isinstance(t, str)]
        probs = self.model.predict_proba([texts[i] for i in good])
        rows = prediction_rows(good, probs, self.model.labels, self.top_k)
        names = columns(self.top_k)[1:]
        out = {name: [None] * len(texts) for name in names}
        errors = [""] * len(texts)
        for row in rows:
            for name in names:
                out[name][row["id"]] = row[name]
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                errors[i] = f"{self.text_column!r} must be a string, got {type(text).__name__}"
        result = {key: batch[key] for key in batch}
        result.update({name: np.array(values, dtype=object) for name, values in out.items()})
        result[ERROR_COLUMN] = np.array(errors)
        return result


def predict_dataset(
    ds: Any,
    model_path: str | Path,
    *,
    text_column: str = "text",
    top_k: int = 1,
    actors: int = 1,
    batch_size: int = 1024,
) -> Any:
    """`ds` with the columns label, score (label_2, score_2, ... for top_k > 1) and error
    (empty, or why a row's text could not be scored), from a pool of `actors` model copies."""
    from ray.data import ActorPoolStrategy

    return ds.map_batches(
        ScoreBatch,
        fn_constructor_kwargs={
            "model_path": str(Path(model_path).resolve()),
            "text_column": text_column,
            "top_k": top_k,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=actors),
        num_cpus=1,
    )


def run_ray(
    model: Path,
    input_path: Path,
    output: Path,
    config: BatchConfig,
    in_fmt: str,
    out_fmt: str,
    *,
    progress: bool = True,
) -> Any:
    import ray

    from textclf.batch.job import BatchSummary, errors_path, usable_workers

    start = time.monotonic()
    actors = max(usable_workers(config), 1)
    started = not ray.is_initialized()
    if started:
        if config.ray_address:
            ray.init(address=config.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=actors, include_dashboard=False, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = progress
        ds = predict_dataset(
            _read(ray, input_path, in_fmt), model, text_column=config.text_column,
            top_k=config.top_k, actors=actors, batch_size=config.chunk_size,
        )  # fmt: skip
        scored, skipped = _write(ds, input_path, output, config, out_fmt, errors_path(output))
    finally:
        if started:
            ray.shutdown()
    return BatchSummary(output, scored, skipped, time.monotonic() - start)


def _read(ray: Any, path: Path, fmt: str) -> Any:
    """Reads reserve no CPU: the actor pool holds one CPU per actor, and a read task waiting for
    a free CPU on a cluster of exactly --workers CPUs would wait for ever."""
    kw: dict[str, Any] = {"num_cpus": 0}
    if fmt == "jsonl":
        return ray.data.read_json(str(path), lines=True, **kw)
    if fmt == "parquet":
        return ray.data.read_parquet(str(path), **kw)
    if fmt == "txt":
        return ray.data.read_text(str(path), **kw)
    from pyarrow import csv

    options = csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
    return ray.data.read_csv(str(path), parse_options=options, **kw)


def _write(
    ds: Any, input_path: Path, output: Path, config: BatchConfig, out_fmt: str, errors: Path
) -> tuple[int, int]:
    sink: Sink = (
        ParquetSink(output)
        if out_fmt == "parquet"
        else TextSink(output, csv_header(config.top_k) if out_fmt == "csv" else b"")
    )
    bad_sink = TextSink(errors) if config.on_error == "skip" else None
    sink.reopen(None)
    if bad_sink is not None:
        bad_sink.reopen(None)
    names, row, scored, skipped = columns(config.top_k)[1:], 0, 0, 0
    try:
        for batch in ds.iter_batches(batch_size=config.chunk_size, batch_format="numpy"):
            rows, bad = [], []
            ids = batch[config.id_column] if config.id_column else None
            for i, error in enumerate(batch[ERROR_COLUMN]):
                if error:
                    bad.append({"row": row + i, "error": f"{input_path}, row {row + i}: {error}"})
                    continue
                id_ = ids[i].item() if ids is not None and hasattr(ids[i], "item") else (
                    ids[i] if ids is not None else row + i)  # fmt: skip
                rows.append({"id": id_, **{n: _plain(batch[n][i]) for n in names}})
            if bad and bad_sink is None:
                raise DataError(f"{bad[0]['error']} (--on-error skip sets such rows aside)")
            if bad_sink is not None:
                bad_sink.write("".join(json.dumps(b) + "\n" for b in bad).encode())
            sink.write(encode(out_fmt, rows, config.top_k))
            row += len(batch[ERROR_COLUMN])
            scored, skipped = scored + len(rows), skipped + len(bad)
    except BaseException:
        sink.discard()
        if bad_sink is not None:
            bad_sink.discard()
        raise
    if bad_sink is not None:
        bad_sink.finish()
    sink.commit()
    sink.finish()
    return scored, skipped


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
