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

import hashlib
import json
import mmap
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import torch
from safetensors.torch import save as save_safetensors

from textclf.config import ModelConfig, model_config_from_dict, to_dict
from textclf.errors import ArtifactError, ConfigError
from textclf.features import TextFeatures, vectorizer_from_state
from textclf.manifest import FORMAT_VERSION, MANIFEST, read_manifest  # re-exported
from textclf.model import MLP

VECTORIZER = "vectorizer.json"
WEIGHTS = "model.safetensors"
MODEL_CARD = "README.md"
_Data = TypeVar("_Data", bytes, bytes | mmap.mmap)
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
    """Verify and load an artifact; any problem raises ArtifactError naming the file."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(
            "no such model folder (train one with `textclf train --out DIR`)", path=root
        )
    manifest = read_manifest(root)
    files = manifest["files"]
    blobs = {name: _verified_bytes(root, name, entry) for name, entry in files.items()}
    for required in (WEIGHTS, VECTORIZER):
        if required not in blobs:
            raise ArtifactError(f"manifest lists no {required}", path=root / MANIFEST)
    weights = _verified(root, WEIGHTS, files[WEIGHTS], _mapped)
    vectorizer = _load_vectorizer(root / VECTORIZER, blobs[VECTORIZER])
    model = _load_model(root, manifest, weights, vectorizer.n_features)
    _check_version(root, manifest)
    return Artifact(path=root, manifest=manifest, vectorizer=vectorizer, model=model.to(device))


def sha256(data: bytes | mmap.mmap) -> str:
    return hashlib.sha256(data).hexdigest()


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


def content_version(
    files: Mapping[str, Any], labels: Sequence[str], model_config: Mapping[str, Any]
) -> str:
    """Hash of everything that decides a prediction: weights, vectorizer, label order, shape.

    It is the model's `version`, and loading recomputes it, so an edit to the manifest's labels
    (say, two swapped names) fails loudly instead of silently mislabelling every prediction.
    """
    content = {
        "files": {name: files[name]["sha256"] for name in (WEIGHTS, VECTORIZER) if name in files},
        "labels": list(labels),
        "model_config": dict(model_config),
    }
    return sha256(json.dumps(content, sort_keys=True).encode())[:16]


def _check_version(root: Path, manifest: dict[str, Any]) -> None:
    expected = content_version(manifest["files"], manifest["labels"], manifest["model_config"])
    if manifest["version"] != expected:
        raise ArtifactError(
            "labels, model_config or file checksums do not match the recorded version hash: "
            "the manifest was edited",
            path=root / MANIFEST,
        )


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


def _safe_member(root: Path, name: object) -> Path:
    """Reject names that could escape the folder (`../x`, absolute paths, sub-folders)."""
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"invalid file name {name!r} in manifest", path=root / MANIFEST)
    pure = PurePosixPath(name)
    if pure.is_absolute() or len(pure.parts) != 1 or name in (".", "..") or "\\" in name:
        raise ArtifactError(
            f"file name {name!r} would escape the model folder; refusing to read it",
            path=root / MANIFEST,
        )
    return root / name


def _verified_bytes(root: Path, name: str, entry: object) -> bytes:
    """The file's contents, checked against the manifest (the weights: `_verified(..., _mapped)`,
    so they are never read into this process's own memory)."""
    if name == WEIGHTS:
        return b""  # mapped instead; verified there
    return _verified(root, name, entry, Path.read_bytes)


def _verified(
    root: Path, name: str, entry: object, read: Callable[[Path], _Data]
) -> _Data:
    path = _safe_member(root, name)
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise ArtifactError(f"manifest entry for {name!r} has no sha256", path=root / MANIFEST)
    try:
        data = read(path)
    except FileNotFoundError:
        raise ArtifactError("missing (listed in manifest.json)", path=path) from None
    expected_size = entry.get("bytes")
    if expected_size is not None and len(data) != expected_size:
        raise ArtifactError(
            f"is {len(data)} bytes but the manifest says {expected_size}: truncated or replaced",
            path=path,
        )
    if sha256(data) != entry["sha256"]:
        raise ArtifactError("checksum mismatch: the file was edited or corrupted", path=path)
    return data


def _load_vectorizer(path: Path, data: bytes) -> TextFeatures:
    # ConfigError: bad settings inside the state; AttributeError: a state that is not an object.
    try:
        return vectorizer_from_state(json.loads(data))
    except (
        UnicodeDecodeError,
        json.JSONDecodeError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
        ConfigError,
    ) as exc:
        raise ArtifactError(f"invalid vectorizer state ({exc})", path=path) from None


def _mapped(path: Path) -> bytes | mmap.mmap:
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return b""  # an empty file cannot be mapped
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)


def _load_model(
    root: Path, manifest: dict[str, Any], data: bytes | mmap.mmap, n_terms: int
) -> MLP:
    path = root / WEIGHTS
    try:
        config = model_config_from_dict(manifest["model_config"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ArtifactError(f"invalid model_config ({exc})", path=root / MANIFEST) from None
    _check_consistency(root, manifest, config, n_terms)
    try:
        tensors = _tensors_viewing(data)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ArtifactError(f"not a valid safetensors file ({exc})", path=path) from None
    with torch.device("meta"):  # no memory and no random init for weights about to be replaced
        model = MLP(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        raise ArtifactError(
            f"weights do not match model_config: expected {expected}, found {found}", path=path
        )
    model.load_state_dict(tensors, assign=True)  # the parameters are the mapped tensors
    model.eval()
    return model


_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}


def _tensors_viewing(data: bytes | mmap.mmap) -> dict[str, torch.Tensor]:
    """The safetensors file's tensors as views of `data`, without copying (the format: an 8-byte
    little-endian header size, a JSON header of dtype, shape and byte range per tensor, then the
    bytes). Raises ValueError, KeyError or TypeError if it is malformed."""
    if len(data) < 8:
        raise ValueError("shorter than its header")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("header runs past the end of the file")
    header = json.loads(bytes(data[8 : 8 + size]))
    start, end = 8 + size, len(data)
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES[spec["dtype"]]
        shape = [int(n) for n in spec["shape"]]
        begin, stop = (start + int(offset) for offset in spec["data_offsets"])
        count = 1
        for n in shape:
            count *= n
        if not start <= begin <= stop <= end or stop - begin != count * dtype.itemsize:
            raise ValueError(f"tensor {name!r} does not fit its byte range")
        flat = torch.frombuffer(data, dtype=dtype, count=count, offset=begin) if count else None
        tensors[name] = torch.empty(0, dtype=dtype) if flat is None else flat
        tensors[name] = tensors[name].reshape(shape)
    return tensors


def _check_consistency(root: Path, manifest: dict[str, Any], config: ModelConfig, n: int) -> None:
    labels = manifest["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ArtifactError("'labels' must be a list of strings", path=root / MANIFEST)
    if len(labels) != config.n_labels or len(set(labels)) != len(labels):
        raise ArtifactError(
            f"{len(labels)} labels listed but the model has {config.n_labels} outputs",
            path=root / MANIFEST,
        )
    if n != config.n_features:
        raise ArtifactError(
            f"vectorizer has {n} terms but the model expects {config.n_features}",
            path=root / VECTORIZER,
        )
