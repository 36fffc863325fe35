# Two jobs for a new user: `make demo` (a simulated shoot) and `make test` (the test suite).
# Each sets up what is missing first: the virtualenv, the Python packages, mosquitto,
# PostgreSQL (the archive's tests), chromium (the web monitor's test).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cupola-installed

.PHONY: demo test flake deps lint typecheck check soak qualify bench bench-quick clean

demo: deps
	$(BIN)/cupola demo

test: deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

deps: $(STAMP)
	@./scripts/ensure-system-packages.sh

# The flight daemon alone is `pip install .`; here everything: ground, bench and dev tools.
$(STAMP): pyproject.toml
	@echo "setting up $(VENV): the Python packages (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

flake: deps
	./scripts/flake.sh $(BIN)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

check: lint typecheck test

soak: deps
	$(BIN)/python -m pytest -m soak -q

qualify: deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m qualification -q

bench: deps
	@./scripts/ensure-system-packages.sh bench
	$(BIN)/python -m bench.run

bench-quick: deps
	@./scripts/ensure-system-packages.sh bench
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
