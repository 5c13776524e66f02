# Two commands for a fresh machine (see README): `make run` and `make test`.
# Both create .venv and install what they need themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL ?= models/20ng
HOST ?= 127.0.0.1
PORT ?= 8000
# The checkout installs every extra (train + serve) and the dev tools; `pip install textclf` alone
# is the thin client. torch is pinned to the exact CPU wheel first so that the package's range
# (which 2.13.0 satisfies) installs nothing more; otherwise pip may pull a CUDA build of several GB.
TORCH_PIN ?= torch==2.13.0
# Test processes (pytest-xdist). Each test file runs whole in one process (--dist loadfile), so a
# module's shared server or Ray session starts once; 2 matches CI's two cores.
TEST_WORKERS ?= 2

# On the project's machines the 20 Newsgroups archive sits beside the checkout; use it when there
# (users elsewhere get scikit-learn's checksummed download instead).
LOCAL_ARCHIVE := $(abspath ../shared/data/20news-bydate.tar.gz)
ifneq ($(wildcard $(LOCAL_ARCHIVE)),)
TEXTCLF_20NG_ARCHIVE ?= $(LOCAL_ARCHIVE)
export TEXTCLF_20NG_ARCHIVE
endif

.PHONY: run train serve test audit lint install system-packages bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $@

install: $(BIN)/.installed

## system-packages: Debian's chromium and nginx, which the tests drive, when missing (apt-get)
system-packages:
	.ci/system-packages

## run: train the default model if none exists, then serve it on http://$(HOST):$(PORT)
run: install
	@test -f $(MODEL)/manifest.json || $(BIN)/textclf train --out $(MODEL)
	$(BIN)/textclf serve $(MODEL) --host $(HOST) --port $(PORT)

train: install
	$(BIN)/textclf train --out $(MODEL) --overwrite

## test: lint, type-check, run the whole test suite, then audit the dependencies
test: install system-packages
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile
	.ci/audit

## audit: known vulnerabilities in the installed dependencies (pip-audit); offline, only a notice
audit: install
	.ci/audit

bench: install
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
