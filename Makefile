# Quickstart targets. Both are idempotent: the virtual environment is created once and
# reinstalled only when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-all install gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sparsegrow run experiments/quickstart.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ""

# GPU acceptance check, under 8 minutes on a CUDA machine (sparsegrow/bench/gpu.py); writes
# results/gpu/gpu_check.json. Without a GPU: .venv/bin/sparsegrow bench gpu --dry-run
gpu-check: $(STAMP)
	$(BIN)/sparsegrow bench gpu
