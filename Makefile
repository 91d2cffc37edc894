# Quick start: `make demo` builds and runs the example chain; `make test` runs the test suite.
# Both create .venv with a Python >= 3.11 (override with PYTHON=python3.12): the demo installs only what
# building and running needs, the tests add pytest and ray (~240 MB) to the same .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed
EXAMPLE := examples/quickstart
DATA_EXAMPLE := examples/data

.PHONY: demo data-demo test bench compat soak scientific clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[build]'
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[build,dev,ray]'
	touch $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/wasm-agents build $(EXAMPLE)
	$(BIN)/wasm-agents verify $(EXAMPLE)/dist
	$(BIN)/wasm-agents run $(EXAMPLE)/dist --task '{"op": "add", "a": 2, "b": 3}' --log-level warning
	$(BIN)/wasm-agents run $(EXAMPLE)/dist --task '{"op": "multiply", "a": 6, "b": 7}'
	@echo "The command is $(BIN)/wasm-agents (or wasm-agents after: source $(BIN)/activate); start a project with: wasm-agents init my-agents"

# A default agent and a numpy/pandas agent in one chain. The first build on a host downloads the scientific runtime
# (~100 MB) and compiles it for this machine (2-6 min, ~2.5 GB of memory), once.
data-demo: $(DEMO_STAMP)
	$(BIN)/wasm-agents build $(DATA_EXAMPLE)
	$(BIN)/wasm-agents verify $(DATA_EXAMPLE)/dist
	$(BIN)/wasm-agents run $(DATA_EXAMPLE)/dist --log-level warning --task '{"op": "solve", "a": [[3, 1], [1, 2]], "b": [9, 8]}'
	$(BIN)/wasm-agents run $(DATA_EXAMPLE)/dist --task '{"op": "totals", "rows": [{"region": "north", "amount": 120.5}, {"region": "south", "amount": 80}, {"region": "north", "amount": 42}]}'

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run.py
	$(BIN)/python bench/scientific.py --compile

compat: $(STAMP)
	$(BIN)/python compat/run.py

soak: $(STAMP)
	$(BIN)/python bench/soak.py

# The scientific runtime's tests, the hostile suite against it among them (native numpy and pandas to compare with): the first run
# downloads ~100 MB and compiles it for this host (~2 min, twice).
scientific: $(STAMP)
	$(BIN)/python -m pip install --quiet numpy pandas
	WASM_AGENTS_SCIENTIFIC=1 $(BIN)/python -m pytest tests/test_scientific.py tests/test_scientific_chain.py tests/scientific_security

clean:
	rm -rf $(VENV) $(EXAMPLE)/dist $(DATA_EXAMPLE)/dist
