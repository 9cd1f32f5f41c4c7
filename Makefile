# edgekit: every target installs what it needs first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgekit-installed
RUN ?= runs/demo

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): requirements/base.txt requirements/nodeps.txt requirements/dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/base.txt -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements/nodeps.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/edgekit --version
	touch $(STAMP)

demo: install
	$(BIN)/edgekit train cnn --data builtin:digits --out $(RUN) --overwrite
	$(BIN)/edgekit export $(RUN) --format all --quant all --out $(RUN)/export
	$(BIN)/edgekit bench $(RUN)/export --json $(RUN)/bench.json --markdown $(RUN)/bench.md

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check edgekit tests benchmarks

clean:
	rm -rf runs .pytest_cache
