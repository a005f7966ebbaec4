# harmonylib: every target creates or reuses .venv and installs the pinned environment.
#   make table1      papermill notebooks/04_table1.ipynb on the embedded default (mini)
#   make test        the test suite (what CI runs)
# Another torch build (e.g. CUDA): TORCH_SPEC='torch==2.13.0' PIP_TORCH_ARGS='--index-url <your wheel index>' make ...
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= mini
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.harmonylib-installed

.PHONY: venv test test-slow table1 data lab lint style clean-results bench

venv: $(STAMP)

# torch goes first and alone, so that a bare "torch" requirement never pulls a CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (harmonylib)" >/dev/null
	@touch $(STAMP)

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

data: $(STAMP)
	$(BIN)/harmonylib build-data --profile $(PROFILE)

table1: $(STAMP)
	@mkdir -p results/$(PROFILE)/notebooks
	$(BIN)/papermill notebooks/04_table1.ipynb results/$(PROFILE)/notebooks/04_table1.ipynb -k python3 -p profile $(PROFILE)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check harmonylib tests benchmarks
	$(BIN)/ruff format --check harmonylib tests benchmarks

style: $(STAMP)
	$(BIN)/ruff check --fix harmonylib tests benchmarks
	$(BIN)/ruff format harmonylib tests benchmarks
