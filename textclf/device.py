"""Device choice: CUDA, then Apple's MPS, else CPU; `--device` forces one and fails clearly."""

from __future__ import annotations

import torch

from textclf.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train on; asking for one that is absent is an error, not a silent fallback."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available")
    if name == "mps" and not _mps_available():
        raise ConfigError("--device mps was requested but MPS is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}: choose auto, cpu, cuda or mps")
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
