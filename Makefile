# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench docs wheel clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

# one worker per core, each test file on one worker (its module's servers and browser started once)
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile --basetemp=.pytest-tmp $(PYTEST_ARGS)  # own folder: worktrees share /tmp/pytest-of-$$USER, which pytest prunes

demo: $(STAMP)
	$(BIN)/ccsync demo $(DEMO_ARGS)

# ratios measured side by side in one run (see the README's Performance table)
bench: $(STAMP)
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/service.py

docs: $(STAMP)
	$(BIN)/python tools/cli_reference.py --write

wheel: $(STAMP)
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .pytest-tmp
