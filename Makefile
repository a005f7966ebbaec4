# harmonylib: every target creates or reuses .venv and installs the pinned environment.
#   make table1      papermill notebooks/04_table1.ipynb on the embedded default (mini)
#   make test        the test suite (what CI runs)
#   make reproduce   every notebook through papermill, in dependency order (PROFILE=mini|paper [DATA_ROOT=...] [JOBS=n])
#   make pretrain-mini  the mini pretraining recipe (20-60 min on 2 cores) -> harmonylib/weights/mini
#   make lock        rewrite requirements.lock (exact versions) from .venv, after a deliberate upgrade
# Another torch build (e.g. CUDA): TORCH_SPEC='torch==2.13.0' PIP_TORCH_ARGS='--index-url <your wheel index>' make ...
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= mini
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.harmonylib-installed

.PHONY: venv test test-slow table1 data lab lint style clean-results bench pretrain-mini retrain reproduce executed lock

venv: $(STAMP)

# torch goes first and alone, so that a bare "torch" requirement never pulls a CUDA build; then the
# exact versions of requirements.lock (which holds no torch), then the project itself.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -r requirements.lock -e ".[dev]"
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
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/papermill notebooks/04_table1.ipynb results/$(PROFILE)/notebooks/04_table1.ipynb -k python3 -p profile $(PROFILE)

# The committed stand-ins for SD's VAE and DiffHarmony's UNet (harmonylib/weights/README.md).
# Resumable; finished stages are reused. CI runs the same recipe with --profile smoke --out DIR.
pretrain-mini: $(STAMP)
	$(BIN)/python -m harmonylib.training.pretrain --profile mini

# The released mini checkpoints (forward UNet, Harmony-VAE seeds) re-made from the base weights in
# results/$(PROFILE)/runs/retrain (resumable), every file's SHA-256 compared with the committed ones.
retrain: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python -m harmonylib.retrain --profile mini

# ---- make reproduce ----------------------------------------------------------------------------
# Every notebook through papermill, in dependency order (a DAG, not numeric order), executed copies
# in results/$(PROFILE)/notebooks/. Each edge below is a real one: the later notebook reads what
# the earlier one trains or writes (04 trains the Harmony-VAE seeds and makes the DiffHarmony(++)
# predictions at R_inf '1024' that 06, 07, 08 and 10 reuse). 07 and 08 may run together: the one
# folder they share (E_c+D / zero at '512') is deterministic and written file by file atomically.
# Independent branches run side by side with JOBS (default 2 for smoke and mini, one single-threaded
# notebook per core; 1 for paper, one GPU), longest chain first (NB_ALL's order):
#   00 -> 01, 02, 03;  02 -> 05;  02, 03 -> 11;  01 -> 04;  04 -> 07, 08;  04, 11 -> 06, 09, 10
# 12_pretrain_mini is never run here: the mini base weights are committed (make pretrain-mini).
# A notebook reruns when its source, an upstream executed copy, or any harmonylib file is newer
# than its executed copy; a rerun is cheap, because the notebooks skip finished training and
# inference themselves (run folders with DONE markers, prediction folders keyed by settings hash).
NB_OUT = results/$(PROFILE)/notebooks
NB_PARAMS = -p profile $(PROFILE) $(if $(DATA_ROOT),-p data_root $(DATA_ROOT),)
JOBS ?= $(if $(filter paper,$(PROFILE)),1,2)
LIB_FILES := $(shell find harmonylib -name '*.py' -o -name '*.yaml' -o -name '*.csv' 2>/dev/null)
nb = $(NB_OUT)/$(1).ipynb
NB_ORDER = 00_data 01_train_harmony_vae 02_train_inverse_model 03_train_classifier 11_build_human_harmony \
	04_table1 08_table5 05_table2 06_table3 07_table4 09_figure2 10_inference
NB_ALL = $(foreach n,$(NB_ORDER),$(call nb,$(n)))

$(call nb,01_train_harmony_vae) $(call nb,02_train_inverse_model) $(call nb,03_train_classifier): $(call nb,00_data)
$(call nb,05_table2): $(call nb,02_train_inverse_model)
$(call nb,11_build_human_harmony): $(call nb,02_train_inverse_model) $(call nb,03_train_classifier)
$(call nb,04_table1): $(call nb,01_train_harmony_vae)
$(call nb,06_table3) $(call nb,09_figure2) $(call nb,10_inference): $(call nb,04_table1) $(call nb,11_build_human_harmony)
$(call nb,07_table4) $(call nb,08_table5): $(call nb,04_table1)

# papermill writes a hidden partial copy first: an interrupted run never looks finished.
$(NB_OUT)/%.ipynb: notebooks/%.ipynb $(LIB_FILES) | $(STAMP)
	@mkdir -p $(NB_OUT)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/papermill $< $(NB_OUT)/.partial-$*.ipynb -k python3 $(NB_PARAMS)
	@mv $(NB_OUT)/.partial-$*.ipynb $@

# The claims are merged once more at the end: two notebooks finishing together may each have
# merged before the other's measurements were written. The README's results block shows mini.
reproduce: $(STAMP)
	$(MAKE) -j$(JOBS) $(NB_ALL)
	$(BIN)/python -c 'import sys; from harmonylib.experiments import update_claims; update_claims(sys.argv[1])' results/$(PROFILE)
	$(if $(filter mini,$(PROFILE)),$(BIN)/python -m harmonylib.readme_figure --profile mini,@true)
	$(if $(filter mini,$(PROFILE)),$(BIN)/python -m harmonylib.readme --profile mini,@echo "README block left as is: it shows mini (python -m harmonylib.readme --profile $(PROFILE) to show $(PROFILE))")
	@echo "executed notebooks: $(NB_OUT); claims: results/$(PROFILE)/claims.md"

# The executed notebooks committed for readers live in results/$(PROFILE)/executed/, which
# reproduce never writes: publish them on purpose, after a reproduce (progress bars dropped,
# absolute paths made relative; harmonylib/executed.py).
executed: $(STAMP)
	$(BIN)/python -m harmonylib.executed --profile $(PROFILE)

# The lock is the installed closure of harmonylib[dev] (torch left out); test_environment.py checks it
# against pyproject.toml's ranges and environment.yml.
lock: $(STAMP)
	$(BIN)/python tools/lock.py requirements.lock

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check harmonylib tests benchmarks tools
	$(BIN)/ruff format --check harmonylib tests benchmarks tools

style: $(STAMP)
	$(BIN)/ruff check --fix harmonylib tests benchmarks tools
	$(BIN)/ruff format harmonylib tests benchmarks tools
