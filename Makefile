# Everything installs itself from nothing but python3: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEV    := $(VENV)/.installed-dev
BENCHX := $(VENV)/.installed-bench
BENCH_SCALE ?= quick

.PHONY: demo test test-slow lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(BENCHX): pyproject.toml $(DEV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $@

## The seed's scenario, from the shell, against a throw-away store.
demo: $(DEV)
	@store=$$(mktemp -d); trap 'rm -rf "$$store"' EXIT; \
	export CQRS_HOME="$$store" PATH="$(CURDIR)/$(BIN):$$PATH"; set -e; \
	run() { printf '\n$$'; for a in "$$@"; do case "$$a" in *" "*) printf " '%s'" "$$a";; *) printf ' %s' "$$a";; esac; done; \
	        echo; "$$@" || echo "(exit $$?)"; }; \
	run cqrs item create Item1; \
	run cqrs item update Item1 "Updated Description"; \
	echo; echo "# No cqrs sync: each write left a catch-up behind it. Wait for position 2:"; \
	run cqrs item get Item1 --min-position 2 --wait 2; \
	run cqrs item list; \
	run cqrs item create Item2 -d "Second item"; \
	echo; echo "# Reads are eventually consistent: a moment later, Item2 is in the projection."; \
	run sleep 1; \
	run cqrs item get Item2; \
	echo; echo "# With the catch-up off, a write is not in the projection until a sync."; \
	run env CQRS_CATCHUP=0 cqrs item create Item3 -d "Third item"; \
	run cqrs item get Item3 --min-position 4 --wait 0.5; \
	run cqrs item get Item3 --sync; \
	run cqrs item history Item1; \
	run cqrs status

## Lint, type checks and the test suite (what CI runs).
test: lint typecheck pytest

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV)
	$(BIN)/mypy

pytest: $(DEV)
	$(BIN)/pytest -q -m "not slow"

## The long reliability loops (CI runs them after `make test`).
test-slow: $(DEV)
	$(BIN)/pytest -q -m slow

## Benchmarks against plain sqlite3 (and the eventsourcing library); BENCH_SCALE=full for 1M events.
bench: $(BENCHX)
	$(BIN)/python -m benchmarks --scale $(BENCH_SCALE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
