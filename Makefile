# Two jobs for a new user: `make demo` (a simulated shoot) and `make test` (the test suite).
# Each sets up what is missing first: the virtualenv, the Python packages, mosquitto,
# PostgreSQL (the archive's tests), chromium (the web monitor's test).

PYTHON ?= python3
# Python keeps its compiled modules: a machine that says PYTHONDONTWRITEBYTECODE would compile
# every module again in each of the hundreds of processes the tests and benchmarks start (0.57 s
# instead of 0.35 s to import the daemon), which an installed Cupola never does.
unexport PYTHONDONTWRITEBYTECODE
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cupola-installed

.PHONY: demo test flake deps lint typecheck check soak qualify bench bench-quick clean

demo: deps
	$(BIN)/cupola demo

# Four workers on two cores: most tests spend their time waiting on real time (physics, a
# broker, timeouts), so two workers left the cores half idle (CPU 52 %, 4 min 17 s; four: 2 min 20 s).
TEST_ARGS := -n 4 --dist loadgroup -q

test: deps
	$(BIN)/python -m pytest $(TEST_ARGS)

deps: $(STAMP)
	@./scripts/ensure-system-packages.sh

# The flight daemon alone is `pip install .`; here everything: ground, bench and dev tools,
# then Cupola's own modules compiled, as pip compiles an installed package's.
$(STAMP): pyproject.toml
	@echo "setting up $(VENV): the Python packages (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 firmware_host protocols hil tools bench tests
	@touch $(STAMP)

flake: deps
	./scripts/flake.sh $(BIN) $(TEST_ARGS)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

check: lint typecheck test

soak: deps
	$(BIN)/python -m pytest -m soak -q

qualify: deps
	$(BIN)/python -m pytest $(TEST_ARGS) -m qualification

bench: deps
	@./scripts/ensure-system-packages.sh bench
	$(BIN)/python -m bench.run

bench-quick: deps
	@./scripts/ensure-system-packages.sh bench
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
