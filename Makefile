# The two commands that do all set-up on a fresh machine:
#   make run    create .venv, install, open the app on the built-in `local` host with the demo
#               project ready (gputui --demo: push, train configs/dev.yaml, pull, on this machine)
#   make test   create .venv, install with dev extras, run the whole suite
#   make test-fast  quick checks: no network namespaces, training runs or slowest end-to-end tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast shellcheck check lint system-packages venv clean tour

run: venv
	@.ci/system-packages --optional
	$(BIN)/gputui --demo

# The host-side shell scripts shipped with the packages; none yet is not an error.
SHELL_SCRIPTS = $(shell find transfer trainers -name '*.sh' -type f 2>/dev/null | sort)

test: venv
	@.ci/system-packages
	$(BIN)/lint-imports
	$(BIN)/ruff check tui transfer trainers tests benchmarks
	@$(MAKE) --no-print-directory shellcheck
	$(BIN)/pytest -q

# What a change is checked with while working: no network namespaces, no training runs, no
# slow end-to-end checks; four workers, as most of the time is spent waiting on sshd.
test-fast: venv
	@.ci/system-packages
	$(BIN)/pytest -q -n 4 -m "not netns and not training and not slow"

shellcheck:
	$(if $(SHELL_SCRIPTS),shellcheck $(SHELL_SCRIPTS),@echo "shellcheck: no *.sh under transfer/ or trainers/")

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
