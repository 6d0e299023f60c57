# Fresh machine: `make test` (set up + whole suite) and `make lab` (set up + JupyterLab on the quickstart).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel is pinned here and only here: pyproject keeps `torch>=2.4`, and a plain resolve of that
# range pulls the multi-GB CUDA build and its nvidia-* wheels.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# The stamp names the torch pin, so changing TORCH_VERSION reinstalls as editing pyproject.toml does.
STAMP := $(VENV)/.installed-torch-$(TORCH_VERSION)

# COMMAND=DEBIAN_PACKAGES: packages are installed only when the command is missing.
APT_GRAPHVIZ := dot=graphviz,fonts-liberation2
APT_CHROMIUM := chromium=chromium,fonts-liberation
# A C compiler builds the one-pass fake-quantize kernel (optional at run time; the tests check it).
APT_CC := cc=gcc

NOTEBOOK ?= notebooks/01_quickstart.ipynb
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888
LAB_TOKEN ?=
LAB_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
SITE_DIR ?= site
# The browser test writes its screenshot under build/ (gitignored), so `make test` leaves the tree
# clean; `make docs-screenshot` is the one way the docs' image changes.
SCREENSHOT := build/screenshots/explorer.png
DOCS_SCREENSHOT := docs/assets/explorer.png

ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
section = @printf '\n==================== %s ====================\n' '$(1)'

.PHONY: help setup system-deps venv test lint typecheck pytest docs-build lab bench docs docs-serve docs-screenshot clean

help:
	@echo "make test        set up (apt packages, $(VENV)) and run ruff, mypy, pytest, mkdocs --strict"
	@echo "make lab         set up and open JupyterLab on $(NOTEBOOK) (LAB_IP=$(LAB_IP) LAB_PORT=$(LAB_PORT))"
	@echo "make bench       run bench/run_all.py, which rewrites docs/benchmarks.md (BENCH_ARGS=\"--only trace\")"
	@echo "make docs        build the docs site into $(SITE_DIR)/ (make docs-serve for a live preview)"
	@echo "make docs-screenshot  run the browser test and copy its screenshot to $(DOCS_SCREENSHOT)"
	@echo "make setup       only the set-up: graphviz + chromium (+ gcc) via apt-get, then $(VENV) with CPU torch $(TORCH_VERSION)"
	@echo "Overridable: VENV, PY, TORCH_VERSION, TORCH_INDEX, PYTEST_ARGS, BENCH_ARGS, LAB_IP, LAB_PORT, LAB_TOKEN, LAB_ARGS"

# ---------------------------------------------------------------- set-up

setup: system-deps venv

system-deps:
	@scripts/ensure-apt-packages.sh $(APT_GRAPHVIZ) $(APT_CHROMIUM) $(APT_CC)

venv: $(STAMP)

# Two steps: the first puts the CPU wheel in place with the extra index on that call only (on every
# dependency lookup it would cost a round trip, and many retries where the host is unreachable); the
# second repeats the pin so resolving `torch>=2.4` keeps it.
$(STAMP): pyproject.toml
	$(call section,set-up: $(VENV))
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --no-deps "torch==$(TORCH_VERSION)" --extra-index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install "torch==$(TORCH_VERSION)" -e ".[test]"
	rm -f $(VENV)/.installed-torch-*
	touch $@

# ---------------------------------------------------------------- test

# Steps run in the order listed and make stops at the first failure (.NOTPARALLEL keeps that true under -j).
test: setup lint typecheck pytest docs-build
	@printf '\nAll checks passed.\n'

lint typecheck pytest docs-build: venv

lint:
	$(call section,ruff)
	$(BIN)/ruff check nncf_explore tests bench

typecheck:
	$(call section,mypy --strict (config in pyproject.toml))
	$(BIN)/mypy

# The venv's bin goes first on PATH so notebook kernels, `jupyter` and other subprocesses started by
# tests resolve inside the venv.
pytest:
	$(call section,pytest)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# NO_MKDOCS_2_WARNING silences Material's end-of-life banner, which is not about this build.
docs-build:
	$(call section,mkdocs build --strict)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(SITE_DIR)

# ---------------------------------------------------------------- lab, bench, docs

# A token chosen here lets us print the full URL before the server starts; port_retries=0 keeps that
# URL true (the server fails instead of moving to another port). The server's root is this folder and
# the notebook is opened through the default URL: given as a file argument, it would make the
# notebook's own folder the root, and the printed /lab/tree/notebooks/... path would not exist.
lab: APT_CHROMIUM :=
lab: system-deps venv
	@test -f $(NOTEBOOK) || { echo "error: $(NOTEBOOK) does not exist yet." >&2; exit 1; }
	@token="$(LAB_TOKEN)"; token="$${token:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))')}"; \
	printf '\nJupyterLab: http://%s:%s/lab/tree/%s?token=%s\n(Ctrl-C to stop; use LAB_IP=0.0.0.0 inside a container)\n\n' \
		'$(LAB_IP)' '$(LAB_PORT)' '$(NOTEBOOK)' "$$token"; \
	PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/jupyter lab $(ALLOW_ROOT) \
		--ServerApp.root_dir="$(CURDIR)" --LabApp.default_url="/lab/tree/$(NOTEBOOK)" \
		--ServerApp.ip=$(LAB_IP) --ServerApp.port=$(LAB_PORT) --ServerApp.port_retries=0 \
		--IdentityProvider.token="$$token" $(LAB_ARGS)

bench: APT_CHROMIUM :=
bench: system-deps venv
	$(call section,bench)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

docs: venv docs-build

docs-serve: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8000

docs-screenshot: setup
	$(call section,browser test -> $(DOCS_SCREENSHOT))
	rm -f $(SCREENSHOT)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -p no:cacheprovider -q tests/browser/test_explorer_lab.py
	cp $(SCREENSHOT) $(DOCS_SCREENSHOT)

clean:
	rm -rf $(SITE_DIR) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
