# streamer: the few verbs a newcomer needs. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench bench-daemon bench-sensor train-keyword train-keyword-lite lint soak clean

setup: $(STAMP)

$(STAMP): Makefile pyproject.toml scripts/install-system.sh scripts/install-sensor-data.sh
	bash scripts/install-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,dev]'
	PIP=$(BIN)/pip bash scripts/install-sensor-data.sh
	$(BIN)/pip install -q --no-deps openwakeword==0.4.0  # the speech embedding's ONNX files; never imported
	touch $(STAMP)

run: setup
	$(BIN)/streamer serve

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/streamer bench engine
	$(BIN)/streamer bench frontend
	$(BIN)/streamer bench fuzz --messages 100000

bench-daemon: setup  # 2-9 minutes: capacity search for the daemon and the naive baseline (models/keywords-lite)
	$(BIN)/streamer bench daemon

soak: setup  # 10 minutes at ~70 % of the daemon's benchmarked capacity, models/keywords-lite (not in make test)
	$(BIN)/streamer bench soak --streams 450 --minutes 10

train-keyword: setup  # the default keyword model from text alone (~51 min on 2 cores); see models/keywords/README.md
	bash scripts/install-tts.sh
	$(BIN)/streamer train-keyword "hey streamer" "lights on" "play music" "stop timer" --out models/keywords \
		--features embedding --steps 1500 --segment-steps 200 --train-hours 30 --hidden 96 --target-fa-per-hour 1 \
		--eval-hours 2 --seed 0 --dropout 0.2 --ensemble 3

train-keyword-lite: setup  # the log-mel model for many streams (~80 min on 2 cores); see models/keywords-lite/README.md
	bash scripts/install-tts.sh
	$(BIN)/streamer train-keyword "hey streamer" "lights on" "play music" "stop timer" --out models/keywords-lite \
		--features logmel --steps 8000 --train-hours 30 --hidden 96 --target-fa-per-hour 1 --eval-hours 2 --seed 0 --dropout 0.2

bench-sensor: setup
	$(BIN)/python examples/bench_one_sample.py

lint: setup
	$(BIN)/ruff check streamer tests examples
	$(BIN)/ruff format --check streamer tests examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
