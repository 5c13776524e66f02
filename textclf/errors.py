"""Typed exceptions: each stage raises its own, so the CLI and the service can turn them into
clear messages (exit codes, HTTP statuses) in one place instead of guessing from strings."""

from __future__ import annotations

from pathlib import Path


class TextclfError(Exception):
    """Base class: every error textclf raises on purpose derives from it."""


class DataError(TextclfError):
    """The training or test data cannot be used; the message names the file, row and problem."""

    def __init__(self, message: str, *, path: Path | str | None = None, row: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        super().__init__(f"{where}{message}")
        self.path = None if path is None else Path(path)
        self.row = row


class ArtifactError(TextclfError):
    """A model folder is missing, corrupt, tampered with or from an incompatible version."""

    def __init__(self, message: str, *, path: Path | str | None = None):
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = None if path is None else Path(path)


class ConfigError(TextclfError):
    """An option value is invalid (caught before any expensive work starts)."""


class TrainingInterrupted(TextclfError):
    """Training stopped on SIGINT/SIGTERM; nothing was written."""
