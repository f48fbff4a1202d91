# Two entry points: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.odeflow-installed

.PHONY: demo test lint test-slow bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU wheel of torch first (a bare `torch` would pull a multi-GB CUDA build).
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	# --overwrite: a second `make demo` replaces the first demo's folder
	$(BIN)/odeflow demo --out runs/demo --overwrite

# Two workers (pytest-xdist), one torch thread each: the machines here have 2 cores.
test: lint
	$(BIN)/python -m pytest -q -n 2

# The checks a contributor's pre-commit hook runs too (.pre-commit-config.yaml): lint, format, types.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks experiments
	$(BIN)/ruff format --check src tests benchmarks experiments
	$(BIN)/mypy

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	# torchcfm 1.0.7 (benchmarks/cnf_objectives.py) without its dependencies: they pull a CUDA torch
	$(BIN)/python -m pip install -q --no-deps torchcfm==1.0.7
	cd benchmarks && ../$(BIN)/python solver_forward.py
	cd benchmarks && ../$(BIN)/python training_step.py
	cd benchmarks && ../$(BIN)/python timeseries.py

docs: $(STAMP)
	# The site (mkdocs material + mkdocstrings API reference) in site/, built offline.
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	@echo "open site/index.html"

clean:
	rm -rf $(VENV) runs site .pytest_cache
