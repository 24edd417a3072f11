# streamer: the few verbs a newcomer needs. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench lint soak clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system.sh
	bash scripts/install-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $(STAMP)

run: setup
	$(BIN)/streamer serve

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/streamer bench engine
	$(BIN)/streamer bench frontend
	$(BIN)/streamer bench fuzz --messages 100000

lint: setup
	$(BIN)/ruff check streamer tests
	$(BIN)/ruff format --check streamer tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
