"""`run_batch` in this process (--workers 0): every format, ids, top-k, bad rows, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.batch.expected import assert_rows_match, predicted_rows
from textclf.batch import BatchConfig, run_batch
from textclf.batch.job import BatchSummary
from textclf.errors import ConfigError, DataError, TextclfError

INLINE = BatchConfig(workers=0, chunk_size=64)


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [{k: (float(v) if k.startswith("score") else v) for k, v in r.items()} for r in rows]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _inputs(tmp: Path, texts: list[str]) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = [t.replace("\n", " ").replace("\r", " ") for t in texts]
    paths = {"jsonl": _jsonl(tmp / "in.jsonl", [{"text": t} for t in flat])}
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        paths[fmt] = tmp / f"in.{fmt}"
        with paths[fmt].open("w", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(["other", "text"])
            writer.writerows([["x", t] for t in flat])
    paths["parquet"] = tmp / "in.parquet"
    pq.write_table(pa.table({"text": flat}), paths["parquet"])
    paths["txt"] = tmp / "in.txt"
    paths["txt"].write_text("".join(t + "\n" for t in flat))
    return paths


def test_every_input_and_output_format_gives_predicts_rows(
    trained_model_dir: Path, predictor: Any, posts: list[str], tmp_path: Path
) -> None:
    texts = [t.replace("\n", " ").replace("\r", " ") for t in posts[:200]]
    expected = predicted_rows(predictor.predict(texts, top_k=2))
    config = BatchConfig(workers=0, chunk_size=64, top_k=2)
    for fmt, path in _inputs(tmp_path, texts).items():
        for out in ("jsonl", "csv", "parquet"):
            output = tmp_path / f"from-{fmt}.{out}"
            summary = run_batch(trained_model_dir, path, output, config, progress=False)
            assert (summary.scored, summary.skipped) == (200, 0)
            got = _read(output)
            if out == "csv":
                for row in got:
                    row["id"] = int(row["id"])
            assert_rows_match(got, expected)
            assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.parts"))


def test_id_column_and_top_k_above_the_labels(
    trained_model_dir: Path, posts: list[str], tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "in.jsonl", [{"doc": f"d{i}", "text": t} for i, t in enumerate(posts[:5])]
    )
    output = tmp_path / "out.jsonl"
    config = BatchConfig(workers=0, id_column="doc", top_k=4)
    run_batch(trained_model_dir, path, output, config, progress=False)
    rows = _read(output)
    assert [r["id"] for r in rows] == [f"d{i}" for i in range(5)]
    assert list(rows[0]) == ["id", "label", "score", "label_2", "score_2", "label_3", "score_3",
                             "label_4", "score_4"]  # fmt: skip
    assert rows[0]["label_4"] is None  # three labels: the fourth rank is empty
    assert rows[0]["score"] >= rows[0]["score_2"] >= rows[0]["score_3"]


BAD = [
    ('{"text": "fine"}', None),
    ('{"text": "unclosed', "line 2: invalid JSON"),
    ('{"body": "no text key"}', "line 3: no 'text' value"),
    ('{"text": 42}', "line 4: 'text' must be a string, got int"),
]


def test_a_bad_row_stops_the_job_naming_file_and_line(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    for i, (line, needle) in enumerate(BAD[1:], start=1):
        path = tmp_path / f"bad{i}.jsonl"
        path.write_text('{"text": "fine"}\n' + line + "\n")
        with pytest.raises(DataError) as caught:
            run_batch(trained_model_dir, path, tmp_path / "out.jsonl", INLINE, progress=False)
        assert str(caught.value).startswith(f"{path}, line 2: ")
        assert needle.split(": ", 1)[1] in str(caught.value)
        assert list(tmp_path.glob("out*")) == []  # nothing half-written is left


def test_on_error_skip_sets_bad_rows_aside_and_counts_them(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n" for line, _ in BAD) + '{"text": "last"}\n')
    output = tmp_path / "out.jsonl"
    config = BatchConfig(workers=0, on_error="skip", chunk_size=2)
    summary = run_batch(trained_model_dir, path, output, config, progress=False)
    assert (summary.scored, summary.skipped) == (2, 3)
    assert [r["id"] for r in _read(output)] == [0, 4]
    errors = _read(tmp_path / "out.jsonl.errors.jsonl")
    assert [e["row"] for e in errors] == [1, 2, 3]
    for error, (_, needle) in zip(errors, BAD[1:], strict=True):
        assert needle in error["error"]
    assert "2 rows scored, 3 skipped" in summary.line()


def test_an_existing_output_is_refused_without_overwrite(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "in.jsonl", [{"text": "hello"}])
    output = tmp_path / "out.jsonl"
    output.write_text("keep me\n")
    with pytest.raises(TextclfError, match="--overwrite"):
        run_batch(trained_model_dir, path, output, INLINE, progress=False)
    assert output.read_text() == "keep me\n"
    run_batch(trained_model_dir, path, output, INLINE, overwrite=True, progress=False)
    assert len(_read(output)) == 1


def test_resume_is_refused_when_the_job_differs(trained_model_dir: Path, tmp_path: Path) -> None:
    from textclf.batch import checkpoint

    path = _jsonl(tmp_path / "in.jsonl", [{"text": "hello"}])
    output = tmp_path / "out.jsonl"
    checkpoint.save(checkpoint.path_for(output), checkpoint.Checkpoint("other", 1, 1, 0, 10, None))
    with pytest.raises(TextclfError, match="cannot resume"):
        run_batch(trained_model_dir, path, output, INLINE, resume=True, progress=False)


def test_unknown_formats_say_what_to_pass(trained_model_dir: Path, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "in.data", [{"text": "hello"}])
    with pytest.raises(ConfigError, match="--format"):
        run_batch(trained_model_dir, path, tmp_path / "o.jsonl", INLINE, progress=False)
    with pytest.raises(ConfigError, match=r"\.jsonl, \.csv or \.parquet"):
        run_batch(trained_model_dir, path, tmp_path / "o.xlsx", BatchConfig(format="jsonl"))


def test_the_summary_rates_count_this_runs_rows_and_the_start_up() -> None:
    summary = BatchSummary(Path("out.jsonl"), 10_000, 0, 5.0, ready_seconds=1.0, earlier=2_000)
    assert summary.rows_per_second == 1_600  # a resumed run scored (10,000 - 2,000) rows in 5 s
    assert summary.scoring_rows_per_second == 2_000  # in 4 s once the model was loaded
    assert "1,600 rows/s; 2,000 rows/s after 1.0s start-up" in summary.line()
    ray = BatchSummary(Path("out.jsonl"), 10, 0, 1.0)  # Ray loads its actors out of sight
    assert "after" not in ray.line()
