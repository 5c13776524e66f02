"""The model folder's manifest: read and checked without the rest of the artifact.

Apart from `textclf.artifact` so that a process that only needs a model's name or version (the
batch job's parent, which checkpoints by version while its workers load the model) does not
import torch for it (~1 s of CPU, taken from the workers it is starting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textclf.errors import ArtifactError

# 2: `wide` naive Bayes columns; 3: the word-pair naive Bayes term (`n_bigrams`, "bigrams").
FORMAT_VERSION = 3
MANIFEST = "manifest.json"


def read_manifest(root: Path) -> dict[str, Any]:
    """The parsed manifest, with its format version and structure checked."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ArtifactError("missing: this folder is not a textclf model", path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(manifest, dict):
        raise ArtifactError("must be a JSON object", path=path)
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ArtifactError("has no integer format_version", path=path)
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"format version {version} is newer than this textclf supports ({FORMAT_VERSION}); "
            "upgrade textclf to load it",
            path=path,
        )
    for key in ("name", "version", "labels", "model_config", "files"):
        if key not in manifest:
            raise ArtifactError(f"is missing the field {key!r}", path=path)
    if not isinstance(manifest["files"], dict):
        raise ArtifactError("'files' must map file names to checksums", path=path)
    return manifest
