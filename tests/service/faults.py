"""Helpers for the fault tests: broken model folders, atomic folder swaps, and `textclf serve` run
as a real process (as a user starts it) whose output the test can wait on."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from textclf.artifact import FORMAT_VERSION, MANIFEST, VECTORIZER, WEIGHTS, sha256

REPO = Path(__file__).resolve().parents[2]
TEXTCLF = Path(sys.executable).parent / "textclf"


# --- broken model folders -----------------------------------------------------------------------


class Exploit:
    """Unpickling this creates `marker`: if the file appears, something unpickled the payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / MANIFEST).read_text("utf-8"))


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")


def _truncate_weights(root: Path) -> tuple[str, ...]:
    data = (root / WEIGHTS).read_bytes()
    (root / WEIGHTS).write_bytes(data[: len(data) // 2])
    return WEIGHTS, "truncated"


def _edit_vectorizer(root: Path) -> tuple[str, ...]:
    data = (root / VECTORIZER).read_bytes()
    (root / VECTORIZER).write_bytes(data.replace(b'"sublinear_tf": true', b'"sublinear_tf": fals'))
    return VECTORIZER, "checksum mismatch"


def _newer_format(root: Path) -> tuple[str, ...]:
    manifest = _manifest(root)
    manifest["format_version"] = FORMAT_VERSION + 1
    _write_manifest(root, manifest)
    return MANIFEST, f"format version {FORMAT_VERSION + 1}", "upgrade textclf"


def _labels_disagree_with_weights(root: Path) -> tuple[str, ...]:
    manifest = _manifest(root)  # labels and model_config agree; the weights' shapes do not
    manifest["labels"] = [*manifest["labels"], "talk.politics.misc"]
    manifest["model_config"]["n_labels"] = len(manifest["labels"])
    _write_manifest(root, manifest)
    return WEIGHTS, "weights do not match model_config"


def _escaping_path(root: Path) -> tuple[str, ...]:
    shutil.copy(root / WEIGHTS, root.parent / WEIGHTS)  # a real file there: only the name stops it
    manifest = _manifest(root)
    manifest["files"][f"../{WEIGHTS}"] = manifest["files"].pop(WEIGHTS)
    _write_manifest(root, manifest)
    return MANIFEST, "escape the model folder"


def _pickled_weights(root: Path) -> tuple[str, ...]:
    payload = pickle.dumps({"input.weight": Exploit(root.parent / "pwned")})
    (root / WEIGHTS).write_bytes(payload)
    manifest = _manifest(root)  # checksum and size "match": only the format check can object
    manifest["files"][WEIGHTS] = {"sha256": sha256(payload), "bytes": len(payload)}
    _write_manifest(root, manifest)
    return WEIGHTS, "not a valid safetensors file"


def _missing_weights(root: Path) -> tuple[str, ...]:
    (root / WEIGHTS).unlink()
    return WEIGHTS, "missing"


# Each breaks a model folder in place and returns what the loader's message must contain.
BREAKAGES: dict[str, Callable[[Path], tuple[str, ...]]] = {
    "missing weights": _missing_weights,
    "truncated safetensors": _truncate_weights,
    "edited JSON": _edit_vectorizer,
    "newer format version": _newer_format,
    "labels disagree with the weights": _labels_disagree_with_weights,
    "path escaping the folder": _escaping_path,
    "pickle instead of safetensors": _pickled_weights,
}


def broken_copy(model: Path, parent: Path, breakage: str) -> tuple[Path, tuple[str, ...]]:
    """A copy of `model` in its own folder under `parent`, broken; and the message's needles."""
    root = Path(shutil.copytree(model, parent / breakage.replace(" ", "-") / "model"))
    return root, BREAKAGES[breakage](root)


def replace_folder(target: Path, source: Path) -> None:
    """Put a copy of `source` at `target` as a deploy should: copy beside it, then rename, so a
    reader sees the old folder or the new one, never half of one."""
    staging = target.with_name(f".{target.name}.new")
    retired = target.with_name(f".{target.name}.old")
    shutil.copytree(source, staging)
    target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired)


# --- `textclf serve` as a process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """`textclf serve MODEL --port P [args]` in its own session; its output is collected line by
    line so a test can wait for a log message. Stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, model: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [str(TEXTCLF), "serve", str(model), "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, ready: bool = True) -> Self:
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()
        if ready:
            self.wait_ready()
        return self

    def _collect(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for_line(self, needle: str, *, after: int = 0, timeout: float = 120) -> str:
        """The first output line from index `after` on that contains `needle`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if needle in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line with {needle!r}; output:\n{''.join(self.lines)}")
                self._changed.wait(remaining)

    def wait_ready(self, timeout: float = 120) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.output}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.url} never became ready:\n{self.output}")

    def send(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 120) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.pid, sig)
                self.process.wait(timeout=wait)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Self:
        return self if self.process is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- a predictor that waits for the test ------------------------------------------------------


class GatedPredictor:
    """A real predictor whose `predict_proba` waits until the test opens `gate`, for the calls
    `hold` selects (all of them by default); everything else passes straight through."""

    def __init__(self, real: Any, hold: Callable[[Any], bool] = lambda texts: True) -> None:
        self._real = real
        self._hold = hold
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def predict_proba(self, texts: Any) -> Any:
        if self._hold(texts):
            self.entered.set()
            assert self.gate.wait(timeout=60), "the test never opened the gate"
        return self._real.predict_proba(texts)
