# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo serves on 127.0.0.1:$(PORT); `make demo PORT=8000` (or PORT=8000 in the
# environment) picks another port.
PORT ?= 5000

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The example channel package is installed too: the tests prove a new channel plugs in
# through its entry point alone.
$(VENV)/.installed-test: $(BIN)/python pyproject.toml examples/superapp_channel/pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]' -e examples/superapp_channel
	touch $@

$(VENV)/.installed-demo: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

# Sets up examples/host_site (a merchant site embedding koudai) and serves it; the steps,
# the URLs and the logins are in examples/host_site/run_demo.py. Safe to run again.
demo: $(VENV)/.installed-demo
	$(BIN)/python -m examples.host_site.run_demo --port $(PORT)

# Two pytest-xdist workers, each with its own PostgreSQL schema and Redis database
# (tests/conftest.py); `worksteal` lets an idle worker take tests queued on the busy one.
# Temporary files (every test's SQLite database) go to /dev/shm when it is writable and
# TMPDIR is unset: a commit there costs ~0.1 ms instead of a ~1.5 ms sync to disk.
# `$(BIN)/pytest tests/test_shop.py` runs one file in one process. The 15 slowest tests are
# listed at the end, to see where the suite's time goes.
test: $(VENV)/.installed-test
	TMPDIR="$${TMPDIR:-$$(test -w /dev/shm && echo /dev/shm)}" $(BIN)/pytest -n 2 --dist worksteal --durations=15

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python bench/checkout.py

clean:
	rm -rf $(VENV) build *.egg-info
