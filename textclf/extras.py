"""Which optional install ("extra") a command needs, said in one line when it is missing.

`pip install textclf` is the client alone (httpx, pydantic); `textclf[train]` adds torch and
scikit-learn, `textclf[serve]` the web server on top, `textclf[all]` everything. A command run
without its extra should say which one to install, not show an ImportError traceback.
"""

from __future__ import annotations

from importlib.util import find_spec

# The import names each extra brings (pyproject.toml's [project.optional-dependencies]).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": (
        "torch", "numpy", "scipy", "sklearn", "safetensors", "threadpoolctl", "tqdm", "matplotlib",
    ),
    "serve": (
        "torch", "numpy", "scipy", "sklearn", "safetensors", "threadpoolctl", "tqdm",
        "fastapi", "uvicorn", "pydantic_settings", "prometheus_client", "fastapi_offline",
    ),
    "ray": (
        "torch", "numpy", "scipy", "sklearn", "safetensors", "threadpoolctl", "tqdm",
        "matplotlib", "ray", "pyarrow",
    ),
    "parquet": ("pyarrow",),
}


class MissingExtra(SystemExit):
    """Raised by `require`: exits with status 1 and one line on stderr."""


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if find_spec(name) is None]


def require(extra: str, command: str) -> None:
    """Exit with one line naming the extra to install if any of its modules is missing."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"textclf {command}: needs the '{extra}' extra ({', '.join(absent)} not installed): "
            f"pip install 'textclf[{extra}]'"
        )
