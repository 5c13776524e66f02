"""Resume state: what has been committed, and a fingerprint of what the job was.

Written atomically (temporary file, fsync, rename) after every committed chunk, so after a kill
at any instant it describes a prefix of the output that is durably on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from textclf.errors import TextclfError


@dataclass(frozen=True)
class Checkpoint:
    fingerprint: str
    items: int  # input rows consumed (scored or skipped)
    scored: int
    skipped: int
    output: int  # the output sink's committed state
    errors: int | None  # the errors file's, when skipping


def path_for(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint.json")


def fingerprint(model_version: str, input_path: Path, options: dict[str, Any]) -> str:
    """Same model, same input file (size and mtime), same options: the same output bytes."""
    stat = input_path.stat()
    raw = json.dumps(
        [model_version, str(input_path.resolve()), stat.st_size, stat.st_mtime_ns, options],
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def save(path: Path, state: Checkpoint) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        json.dump(asdict(state), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load(path: Path, expected: str) -> Checkpoint | None:
    """The checkpoint to resume from, None if there is none; refused if the job differs."""
    if not path.exists():
        return None
    state = Checkpoint(**json.loads(path.read_text()))
    if state.fingerprint != expected:
        raise TextclfError(
            f"{path}: cannot resume: the model, the input file or the options differ from the "
            "interrupted run (rerun with --overwrite to start again)"
        )
    return state
