# Two commands on a fresh machine with Python 3.11+ and make:
#   make demo   the main job: libvirt's restart race, with and without tiers
#   make test   lint (ruff, mypy strict), the docs build and the whole test suite
# and, for the maintainers:
#   make docs   the Sphinx site in docs/_build/html, warnings as errors
#   make bench  the benchmarks; results in benchmarks/results/
#   make soak   the long reliability runs (property tests, soak, signal storms)
# Each creates or refreshes its own virtual environment in .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all test lint docs demo bench soak clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "tiered needs Python 3.11 or newer; set PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks docs
	$(BIN)/ruff format --check src tests examples benchmarks docs
	$(BIN)/mypy
	$(BIN)/mypy docs  # apart: its conftest.py would clash with tests/conftest.py

docs: $(STAMP)
	$(BIN)/sphinx-build -q -W --keep-going -b html docs docs/_build/html

test: lint docs
	$(BIN)/pytest

soak: $(STAMP)
	TIERED_SOAK=1 $(BIN)/pytest --timeout=0 tests/test_properties.py tests/test_properties_dag.py \
		tests/test_properties_supervision.py tests/test_soak.py tests/test_soak_restarts.py tests/test_storms.py

demo: $(STAMP)
	$(BIN)/tiered demo

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build docs/_build .mypy_cache .ruff_cache .hypothesis
