"""The model folder: one self-describing artifact, safe to copy between machines.

    manifest.json      format version, name, labels, configs, data, metrics, versions, checksums
    vectorizer.json    TF-IDF vocabulary, idf and parameters
    model.safetensors  MLP weights
    README.md          model card (human-readable summary of the manifest)

No pickle anywhere: JSON and safetensors only. Every file other than the manifest is listed in it
with its size and SHA-256; loading verifies all of them before parsing any, so a truncated,
edited or swapped file fails loudly with the file's name. Writing goes to a temporary folder beside
the target and is renamed into place, so an interrupted save never leaves a half-written model.

The weights are memory-mapped, not read into memory: the checksum is computed over the mapping and
the model's tensors view it (copy-on-write, so the file is never written), so processes that load
the same model (`textclf serve --workers N`, batch-scoring workers) share one copy of the weights
in the OS page cache. A save replaces the folder by rename, so a loaded model keeps the old file.
"""

from __future__ import annotations

import json
import mmap
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from textclf.artifact_files import (  # re-exported: the names users and tests know
    MODEL_CARD,
    VECTORIZER,
    WEIGHTS,
    ArtifactFiles,
    content_version,
    read_files,
    sha256,
)
from textclf.config import ModelConfig, to_dict
from textclf.errors import ArtifactError
from textclf.features import TextFeatures
from textclf.manifest import FORMAT_VERSION, MANIFEST, read_manifest  # re-exported
from textclf.model import MLP
from textclf.tensor_file import TensorSpec

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "MODEL_CARD",
    "VECTORIZER",
    "WEIGHTS",
    "Artifact",
    "content_version",
    "load",
    "read_manifest",
    "save",
    "sha256",
]
_LIBRARIES = ("textclf", "torch", "scikit-learn", "numpy", "scipy", "safetensors")


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified model: everything the predictor needs."""

    path: Path
    manifest: dict[str, Any]
    vectorizer: TextFeatures
    model: MLP

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.manifest["labels"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def save(
    out: Path,
    *,
    model: MLP,
    vectorizer_state: Mapping[str, Any],
    metadata_: Mapping[str, Any],
    overwrite: bool = False,
    extra_files: Mapping[str, bytes] | None = None,
    model_card: Callable[[dict[str, Any]], str] | None = None,
) -> Path:
    """Write the artifact atomically; `metadata_` holds name, labels, configs, data, metrics."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ArtifactError("already exists; pass --overwrite to replace it", path=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payloads = {
        WEIGHTS: _weights_bytes(model),
        VECTORIZER: json.dumps(vectorizer_state, ensure_ascii=False).encode("utf-8"),
        **(extra_files or {}),
    }
    manifest = _manifest(model.config, payloads, metadata_)
    if model_card is not None:
        payloads[MODEL_CARD] = model_card(manifest).encode("utf-8")
        manifest["files"][MODEL_CARD] = _file_entry(payloads[MODEL_CARD])
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a server run as another user
    try:
        for name, data in payloads.items():
            _write_durably(staging / name, data)
        _write_durably(staging / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def load(path: Path | str, *, device: torch.device | str = "cpu") -> Artifact:
    """Verify and load an artifact; any problem raises ArtifactError naming the file
    (`textclf.artifact_files` checks everything before torch sees a byte)."""
    files = read_files(path)
    model = _load_model(files)
    return Artifact(files.root, files.manifest, files.vectorizer, model.to(device))


def _weights_bytes(model: MLP) -> bytes:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(tensors, metadata={"format": "pt"})


def _manifest(
    config: ModelConfig, payloads: Mapping[str, bytes], metadata_: Mapping[str, Any]
) -> dict[str, Any]:
    files = {name: _file_entry(data) for name, data in sorted(payloads.items())}
    return {
        "format_version": FORMAT_VERSION,
        "name": metadata_["name"],
        "version": content_version(files, metadata_["labels"], to_dict(config)),
        "created_at": datetime.now(UTC).isoformat(),
        "labels": list(metadata_["labels"]),
        "model_config": to_dict(config),
        **{k: v for k, v in metadata_.items() if k not in ("name", "labels")},
        "libraries": _library_versions(),
        "files": files,
    }


def _file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": sha256(data), "bytes": len(data)}


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _replace(staging: Path, out: Path) -> None:
    """Move the finished folder into place; an old artifact is removed only after that works."""
    if not out.exists():
        os.replace(staging, out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    backup.rmdir()
    os.replace(out, backup)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(backup, out)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def _load_model(files: ArtifactFiles) -> MLP:
    try:
        tensors = {name: _tensor_viewing(files.weights, spec) for name, spec in files.specs.items()}
    except (RuntimeError, ValueError) as exc:  # the specs were checked; torch may still object
        raise ArtifactError(
            f"not a valid safetensors file ({exc})", path=files.root / WEIGHTS
        ) from None
    with torch.device("meta"):  # no memory and no random init for weights about to be replaced
        model = MLP(files.config)
    model.load_state_dict(tensors, assign=True)  # the parameters are the mapped tensors
    model.eval()
    return model


_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}


def _tensor_viewing(data: bytes | mmap.mmap, spec: TensorSpec) -> torch.Tensor:
    """The tensor as a view of `data`, without copying."""
    dtype = _DTYPES[spec.dtype]
    if spec.n_items == 0:
        return torch.empty(spec.shape, dtype=dtype)
    flat = torch.frombuffer(data, dtype=dtype, count=spec.n_items, offset=spec.offset)
    return flat.reshape(spec.shape)
