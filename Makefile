# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch comes first and pinned: the CPU wheel on this machine's disk (see README, "Install")
TORCH  := torch==2.13.0

.PHONY: run test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[torch,dev,bench]'

run: install
	$(BIN)/sftopt solve data/instances/default.json --solver lagrange,alm,milp,greedy-delay,greedy,baseline-equal,vanilla-sl --time-limit 20 --seed 0 --out out

test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: install-dev  # the quick suite (seconds); full runs: python -m benchmarks.run (docs/bench.md)
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
