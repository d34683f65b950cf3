# The GAN study harness. `make study VARIANT=wgan` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VARIANT ?= wgan
STUDY ?= quick
TRIALS ?=
WORKERS ?= 1
PYTEST_ARGS ?=
AUDIT_ARGS ?=
SEEDS ?= 5
PORT ?= 8080
TB_PORT ?= 6006

TRIALS_ARG := $(if $(TRIALS),--trials $(TRIALS),)

.PHONY: setup study status test report dashboard tensorboard list bench audit seeds export import clean help

help:
	@echo "make study VARIANT=<name|all> [STUDY=quick] [TRIALS=n] [WORKERS=n]  run a study (n local workers), print the summary"
	@echo "make status STUDY=<name>                                 one line per variant: done/running/failed of the budget"
	@echo "make test                                                run the test suite"
	@echo "make report STUDY=<name>                                 write results/<study>/report/ (tables, figures, notebook)"
	@echo "make dashboard STUDY=<name> [PORT=8080]                  open optuna-dashboard on the study's storage"
	@echo "make tensorboard STUDY=<name> [TB_PORT=6006]            TensorBoard on the study's runs ([train] tensorboard / bench study --tensorboard)"
	@echo "make list                                                show variants, datasets, metrics, studies"
	@echo "make bench [BENCH=name]                                  run benchmarks, write results/bench/"
	@echo "make audit STUDY=<name> [AUDIT_ARGS='--trials all']      verify a study's records and rerun its best trials"
	@echo "make seeds STUDY=<name> VARIANT=<name|all> SEEDS=<k>     rerun each variant's best configuration with k seeds"
	@echo "make export STUDY=<name> ARCHIVE=<file.tar.gz>           write a study to an archive; make import ARCHIVE=... reads one"
	@echo "make setup / make clean                                  create / remove .venv and caches"

setup: $(STAMP)

# Idempotent: reinstalls only when pyproject.toml changes. torch 2.14.1 and torchvision 0.29.1
# come from this machine's local wheel store through pip's configuration.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

study: setup
	$(PY) -m bench study $(STUDY) --variant $(VARIANT) $(TRIALS_ARG) --workers $(WORKERS)
	$(PY) -m bench report $(STUDY) --brief

status: setup
	$(PY) -m bench status $(STUDY)

report: setup
	$(PY) -m bench report $(STUDY)

dashboard: setup
	$(PY) -m bench dashboard $(STUDY) --port $(PORT)

# The study's TensorBoard runs: results/<study>/tensorboard/ (one run per trial, written when the
# study has [train] tensorboard = true or ran with `bench study --tensorboard`).
tensorboard: setup
	@logdir="$$($(PY) -c 'import sys; from bench import records; from bench.config import load_study; print(records.tensorboard_dir(load_study(sys.argv[1]).name))' '$(STUDY)')" || exit 2; \
	if [ ! -d "$$logdir" ]; then echo "make tensorboard: $$logdir does not exist; run the study with [train] tensorboard = true or bench study $(STUDY) --variant V --tensorboard" >&2; exit 2; fi; \
	echo "TensorBoard for $$logdir at http://localhost:$(TB_PORT)/ (Ctrl-C to stop)"; \
	$(VENV)/bin/tensorboard --logdir "$$logdir" --port $(TB_PORT)

list: setup
	$(PY) -m bench list

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Reproducibility audit: results/<study>/audit/audit.md; exits non-zero when anything fails.
audit: setup
	$(PY) -m bench audit $(STUDY) $(AUDIT_ARGS)

# The paper's phase 3: the best configuration of each variant rerun with SEEDS seeds.
seeds: setup
	$(PY) -m bench seeds $(STUDY) --variant $(VARIANT) --seeds $(SEEDS)

# Move a study between machines or storages (checksummed archive).
export: setup
	$(PY) -m bench export $(STUDY) $(ARCHIVE)

import: setup
	$(PY) -m bench import $(ARCHIVE)

# Speed figures: every registered benchmark, results under results/bench/ (BENCH=name to pick one).
bench: setup
	$(PY) -m bench.benchmarks $(BENCH)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
