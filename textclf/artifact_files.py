"""An artifact's files read and verified, without torch: what every loader checks first.

`textclf.artifact` builds the torch model from what this returns and `textclf.host` the NumPy
one, so both refuse the same broken folders with the same messages: every listed file's size and
SHA-256, the version hash over labels, config and checksums, the vectorizer state, and the
weights' names and shapes against the model config. (`textclf.host` refuses one thing more:
weights that are not float32, which NumPy cannot score as torch would.)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import mmap
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from textclf.config import ModelConfig, model_config_from_dict
from textclf.errors import ArtifactError, ConfigError
from textclf.features import TextFeatures, vectorizer_from_state
from textclf.manifest import MANIFEST, read_manifest
from textclf.tensor_file import TensorSpec, read_specs

VECTORIZER = "vectorizer.json"
WEIGHTS = "model.safetensors"
MODEL_CARD = "README.md"
_Data = TypeVar("_Data", bytes, bytes | mmap.mmap)


@dataclass(frozen=True)
class ArtifactFiles:
    """A verified folder: its manifest, vectorizer, model config and the mapped weights."""

    root: Path
    manifest: dict[str, Any]
    vectorizer: TextFeatures
    config: ModelConfig
    weights: bytes | mmap.mmap  # the safetensors file, memory-mapped copy-on-write
    specs: dict[str, TensorSpec]  # each tensor's place in `weights`, shapes checked


def read_files(path: Path | str) -> ArtifactFiles:
    """Verify the folder's files and parse all but the tensors; any problem raises
    ArtifactError naming the file."""
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
    config = _model_config(root, manifest)
    _check_consistency(root, manifest, config, vectorizer.n_features)
    specs = _weight_specs(root / WEIGHTS, weights, config)
    _check_version(root, manifest)
    return ArtifactFiles(root, manifest, vectorizer, config, weights, specs)


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The MLP's state dict, name -> shape, for `config` (`textclf.model.MLP` builds exactly
    these; tests/test_artifact_files.py holds the two together)."""
    n_wide = config.n_labels if config.wide else 0
    widths = [config.n_features - config.n_bigrams, *config.hidden]
    shapes: dict[str, tuple[int, ...]] = {
        "input.weight": (widths[0], widths[1] + n_wide),
        "input.bias": (widths[1] + n_wide,),
    }
    for i, (a, b) in enumerate(itertools.pairwise(widths[1:])):
        shapes[f"hidden.{i}.weight"], shapes[f"hidden.{i}.bias"] = (b, a), (b,)
    shapes["output.weight"] = (config.n_labels, widths[-1])
    shapes["output.bias"] = (config.n_labels,)
    if config.n_bigrams:
        shapes["bigrams"] = (config.n_bigrams, config.n_labels)
    return shapes


def sha256(data: bytes | mmap.mmap) -> str:
    return hashlib.sha256(data).hexdigest()


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


def _weight_specs(
    path: Path, data: bytes | mmap.mmap, config: ModelConfig
) -> dict[str, TensorSpec]:
    try:
        specs = read_specs(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"not a valid safetensors file ({exc})", path=path) from None
    expected = weight_shapes(config)
    found = {name: spec.shape for name, spec in specs.items()}
    if expected != found:
        raise ArtifactError(
            f"weights do not match model_config: expected {expected}, found {found}", path=path
        )
    return specs


def _model_config(root: Path, manifest: dict[str, Any]) -> ModelConfig:
    try:
        return model_config_from_dict(manifest["model_config"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ArtifactError(f"invalid model_config ({exc})", path=root / MANIFEST) from None


def _check_version(root: Path, manifest: dict[str, Any]) -> None:
    expected = content_version(manifest["files"], manifest["labels"], manifest["model_config"])
    if manifest["version"] != expected:
        raise ArtifactError(
            "labels, model_config or file checksums do not match the recorded version hash: "
            "the manifest was edited",
            path=root / MANIFEST,
        )


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


def _verified(root: Path, name: str, entry: object, read: Callable[[Path], _Data]) -> _Data:
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
