# The two commands that do all set-up on a fresh machine:
#   make run    create .venv, install, open the app on the built-in `local` host with the demo
#               project ready (gputui --demo: push, train configs/dev.yaml, pull, on this machine)
#   make test   create .venv, install with dev extras, run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint system-packages venv clean tour

run: venv
	@.ci/system-packages --optional
	$(BIN)/gputui --demo

test: venv
	@.ci/system-packages
	$(BIN)/lint-imports
	$(BIN)/ruff check tui transfer trainers tests benchmarks
	$(BIN)/pytest -q

# The README tour's screenshots (docs/tour/*.svg), made by the headless app from the current code.
tour: venv
	$(BIN)/python docs/tour/make_tour.py

# Static checks that are slower than the tests: types.
check: venv
	$(BIN)/ruff check tui transfer trainers tests benchmarks
	$(BIN)/mypy

venv: $(STAMP)

# CPU torch goes in before the `train` extra, or pip would fetch the multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
