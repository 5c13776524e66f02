"""The thin client install: `pip install textclf` (no extras) brings httpx and pydantic only.

One fresh virtual environment per session gets the package built from this checkout, without
extras; its Python must not find torch, scikit-learn or FastAPI, its `textclf.Client` must get a
real prediction from a real server, and the commands that need an extra must say, in one line,
which one to install. Cheaper checks beside it: the package's metadata agrees with
`textclf.extras.EXTRAS`, and `import textclf.client` loads nothing heavy even where it is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from service.app import create_app
from service.settings import Settings
from service.testing import LiveServer
from textclf.extras import EXTRAS

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# What the wheel is built from (as in the Dockerfile). Copied, so the build's `build/` and
# `*.egg-info` folders land in a temporary folder, not in the checkout.
SOURCES = ("pyproject.toml", "README.md", "textclf", "service", "training")
HEAVY = ("torch", "numpy", "scipy", "sklearn", "fastapi", "uvicorn")
THIN_ABSENT = (*HEAVY, "matplotlib", "safetensors", "pydantic_settings", "prometheus_client")
# Distribution names whose import name is not the name with "-" -> "_".
IMPORT_NAMES = {"scikit-learn": "sklearn"}
INSTALL_TIMEOUT_S = 600


class ThinVenv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "venv" / "bin" / "python"
        self.textclf = root / "venv" / "bin" / "textclf"
        self.work = root / "work"  # cwd of every command: not the checkout, so no source imports
        unset = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        self.env = {k: v for k, v in os.environ.items() if k not in unset}
        self.install_seconds = 0.0

    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python_code(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        # -I: ignore PYTHONPATH and the user site, and keep the current folder off sys.path.
        return self.run(self.python, "-I", "-c", code, *args)


@pytest.fixture(scope="session")
def thin_venv(tmp_path_factory: pytest.TempPathFactory) -> ThinVenv:
    venv = ThinVenv(tmp_path_factory.mktemp("thin"))
    src = venv.root / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / name, src / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, src / name)
    venv.work.mkdir()
    start = time.monotonic()
    commands: tuple[list[str | Path], ...] = (
        [sys.executable, "-m", "venv", venv.root / "venv"],
        # Non-editable, no extras, real dependencies from the configured index; pip builds the
        # wheel in an isolated environment with the declared build backend.
        [venv.python, "-m", "pip", "install", "--quiet", src],
    )
    for command in commands:
        done = venv.run(*command, timeout=INSTALL_TIMEOUT_S)
        assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    venv.install_seconds = time.monotonic() - start
    print(f"\nthin venv: created and `pip install .` in {venv.install_seconds:.1f}s")
    return venv


@pytest.fixture(scope="module")
def live_server(trained_model_dir: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(Settings(model_path=trained_model_dir, api_key=None))) as live:
        yield live


# --- the package metadata ----------------------------------------------------------------------


def _import_names(requirements: list[str], extras: dict[str, list[str]]) -> set[str]:
    names: set[str] = set()
    for line in requirements:
        req = Requirement(line)
        if req.name == PYPROJECT["project"]["name"]:  # self-reference: textclf[train,serve]
            for extra in req.extras:
                names |= _import_names(extras[extra], extras)
        else:
            names.add(IMPORT_NAMES.get(req.name, req.name.replace("-", "_")))
    return names


def test_base_dependencies_are_the_client_only() -> None:
    base = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    assert base == {"httpx", "pydantic"}


def test_extras_match_the_table_the_commands_use() -> None:
    extras: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
    assert {"train", "serve", "all", "dev"} <= set(extras)
    for extra, modules in EXTRAS.items():
        assert _import_names(extras[extra], extras) == set(modules), extra
    assert _import_names(extras["all"], extras) == set().union(
        EXTRAS["train"], EXTRAS["serve"], EXTRAS["ray"]
    )


def test_torch_range_takes_the_pinned_cpu_wheel() -> None:
    """The Makefile and the Dockerfile install torch 2.13.0 first; the extras must accept it."""
    for extra in ("train", "serve"):
        (torch,) = [
            Requirement(r)
            for r in PYPROJECT["project"]["optional-dependencies"][extra]
            if Requirement(r).name == "torch"
        ]
        assert torch.specifier.contains(Version("2.13.0")), torch


def test_import_textclf_client_stays_light() -> None:
    """Even where torch and FastAPI are installed, the client does not load them."""
    code = (
        "import json, sys, textclf, textclf.client\n"
        "textclf.Client, textclf.AsyncClient, textclf.Prediction, textclf.ModelInfo\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint(THIN_ABSENT), sorted(loaded & set(THIN_ABSENT))


# --- the thin environment ----------------------------------------------------------------------

TRY_IMPORTS = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed[name] = type(exc).__name__
print(json.dumps(failed))
"""


def test_public_names_load_on_first_use_and_are_listed() -> None:
    """`import textclf` loads no schemas (pydantic: ~0.2 s of every batch worker's start-up), yet
    every public name imports and `dir` lists them all."""
    script = (
        "import sys, textclf; light = 'pydantic' not in sys.modules; "
        "listed = set(textclf.__all__) <= set(dir(textclf)); "
        "from textclf import Prediction, LabelScore, Term, load; "
        "print(light, listed, Prediction.__module__, callable(load))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "textclf.schemas", "True"]


def test_thin_install_has_no_training_or_serving_stack(thin_venv: ThinVenv) -> None:
    done = thin_venv.python_code(TRY_IMPORTS, *THIN_ABSENT, "httpx", "pydantic")
    assert done.returncode == 0, done.stderr
    failed = json.loads(done.stdout)
    assert failed == dict.fromkeys(THIN_ABSENT, "ModuleNotFoundError")


CLIENT = """
import asyncio, json, sys
import textclf

url = sys.argv[1]
with textclf.Client(url) as client:
    response = client.predict_response(["The shuttle launch was delayed by weather"], top_k=2)
    single = client.predict("The pitcher threw a curveball in the ninth inning")

async def main():
    async with textclf.AsyncClient(url) as client:
        return await client.predict("A new graphics card renders polygons faster")

again = asyncio.run(main())
print(json.dumps({
    "file": textclf.__file__,
    "version": response.model.version,
    "predictions": [p.model_dump() for p in (*response.predictions, single, again)],
}))
"""


def test_thin_client_predicts_from_a_live_server(
    thin_venv: ThinVenv, live_server: LiveServer
) -> None:
    info = httpx.get(f"{live_server.url}/v1/model", timeout=30).raise_for_status().json()
    done = thin_venv.python_code(CLIENT, live_server.url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert Path(answer["file"]).is_relative_to(thin_venv.root / "venv")  # the installed copy
    assert answer["version"] == info["version"]
    predictions = answer["predictions"]
    assert len(predictions) == 3
    for prediction in predictions:
        assert prediction["label"] in info["labels"]
        assert 0.0 <= prediction["score"] <= 1.0
        assert prediction["top_k"][0]["label"] == prediction["label"]
    assert len(predictions[0]["top_k"]) == 2


def test_thin_install_train_help_works(thin_venv: ThinVenv) -> None:
    done = thin_venv.run(thin_venv.textclf, "train", "--help")
    assert done.returncode == 0, done.stderr
    assert "--out" in done.stdout
    assert done.stderr == ""


def _assert_names_extra(done: subprocess.CompletedProcess[str], extra: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"textclf[{extra}]" in lines[0], lines[0]
    assert done.returncode == 1, (done.returncode, done.stderr)


def test_thin_install_train_names_the_train_extra(thin_venv: ThinVenv) -> None:
    out = thin_venv.work / "model"
    done = thin_venv.run(thin_venv.textclf, "train", "--out", out, "--epochs", "1")
    _assert_names_extra(done, "train")
    assert not out.exists()


def test_thin_install_serve_names_the_serve_extra(
    thin_venv: ThinVenv, trained_model_dir: Path
) -> None:
    done = thin_venv.run(thin_venv.textclf, "serve", trained_model_dir, "--port", "0")
    _assert_names_extra(done, "serve")
