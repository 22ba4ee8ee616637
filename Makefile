# caec developer commands. `make install` then `make test` on a fresh machine (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this project's machines; a CUDA machine may install any torch>=2.2.
TORCH_SPEC ?= torch==2.13.0
KODAK ?= ../shared/data/kodak
TRAIN_DATA ?= ../shared/data/train

.PHONY: install test test-fast lint bench results fuzz clean

install: $(BIN)/caec

$(BIN)/caec: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check cae_codec tests bench
	$(BIN)/ruff format --check cae_codec tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/speed.py --dataset $(KODAK) --out docs/bench.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
