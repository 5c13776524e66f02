"""Writers that build the output beside its final name and rename it there only when complete.

Each chunk is appended, then `commit` makes it durable (flush + fsync) and returns the state a
checkpoint records: bytes written for a text file, parts written for Parquet. `reopen(state)`
cuts a partial output back to that state, so a resumed job writes exactly the bytes an
uninterrupted one would have. Parquet's footer cannot be appended to, so its chunks are kept as
one small Parquet file each and joined into the final file (one row group per chunk) at the end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO, Protocol


class Sink(Protocol):
    final: Path

    def reopen(self, state: int | None) -> None: ...
    def write(self, data: bytes) -> None: ...
    def commit(self) -> int: ...
    def finish(self) -> None: ...
    def discard(self) -> None: ...


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + ".partial")


class TextSink:
    """JSON Lines or CSV: one file, appended to, cut back to the committed bytes on resume."""

    def __init__(self, final: Path, header: bytes = b"") -> None:
        self.final, self.partial, self.header = final, partial_path(final), header
        self._handle: IO[bytes] | None = None

    def reopen(self, state: int | None) -> None:
        if state is None:
            fresh = self._handle = self.partial.open("wb")
            fresh.write(self.header)
            return
        handle = self._handle = self.partial.open("r+b")
        handle.truncate(state)
        handle.seek(state)

    def write(self, data: bytes) -> None:
        assert self._handle is not None
        self._handle.write(data)

    def commit(self) -> int:
        assert self._handle is not None
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return self._handle.tell()

    def finish(self) -> None:
        self.close()
        with self.partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self.partial, self.final)
        _sync_folder(self.final.parent)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        self.close()
        self.partial.unlink(missing_ok=True)


class ParquetSink:
    """Parquet: one part file per chunk in a folder beside the output, joined at the end."""

    def __init__(self, final: Path) -> None:
        self.final, self.partial = final, final.with_name(final.name + ".parts")
        self._parts = 0

    def reopen(self, state: int | None) -> None:
        if state is None:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial.mkdir()
            state = 0
        for stale in self.partial.iterdir():  # written after the last checkpoint
            if not stale.name.endswith(".parquet") or int(stale.stem) >= state:
                stale.unlink()
        self._parts = state

    def write(self, data: bytes) -> None:
        part = self.partial / f"{self._parts:08d}.parquet"
        with part.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self._parts += 1

    def commit(self) -> int:
        _sync_folder(self.partial)
        return self._parts

    def finish(self) -> None:
        import pyarrow.parquet as pq

        parts = sorted(self.partial.glob("*.parquet"))
        staging = self.final.with_name(self.final.name + ".joining")
        schema = pq.read_schema(parts[0]) if parts else None
        if schema is None:
            from textclf.batch.rows import encode

            staging.write_bytes(encode("parquet", [], 1))
        else:
            with pq.ParquetWriter(staging, schema) as writer:
                for part in parts:
                    writer.write_table(pq.read_table(part).cast(schema))
        with staging.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(staging, self.final)
        shutil.rmtree(self.partial)
        _sync_folder(self.final.parent)

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


def _sync_folder(folder: Path) -> None:
    """A rename is durable only once its folder's entry is on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
