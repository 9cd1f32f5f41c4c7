# edgekit: every target installs what it needs first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgekit-installed
JS_STAMP := js/node_modules/.edgekit-installed
RUN ?= runs/demo
TEST_WORKERS ?= 2

.PHONY: install chromium postgresql demo test bench fuzz lint clean

install: $(STAMP) $(JS_STAMP) chromium postgresql

$(STAMP): requirements/base.txt requirements/nodeps.txt requirements/dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/base.txt -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements/nodeps.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/edgekit --version
	touch $(STAMP)

# The TF.js runners' npm packages, exactly as package-lock.json pins them; nothing is fetched later.
$(JS_STAMP): js/package.json js/package-lock.json
	@command -v npm >/dev/null || { echo "edgekit: Node.js and npm are needed for TF.js: apt-get install -y nodejs npm"; exit 1; }
	cd js && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(JS_STAMP)

# Debian's Chromium for the tfjs-browser runtime: installed when we can (root with apt-get).
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$EDGEKIT_CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the tfjs-browser runtime"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	else \
		echo "edgekit: Chromium is not installed; the tfjs-browser runtime needs it: sudo apt-get install -y chromium"; \
	fi

# Debian's PostgreSQL server, for the test that runs tune workers against a real database server
# (the test starts its own throwaway server; nothing is configured system-wide).
postgresql:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's postgresql for the tune storage test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }; \
	else \
		echo "edgekit: PostgreSQL is not installed; the tune storage test needs it: sudo apt-get install -y postgresql"; \
	fi

demo: install
	$(BIN)/edgekit train cnn --data builtin:mnist --epochs 15 --out $(RUN) --overwrite
	$(BIN)/edgekit export $(RUN) --format all --quant all --out $(RUN)/export
	$(BIN)/edgekit bench $(RUN)/export --profile all --json $(RUN)/bench.json --markdown $(RUN)/bench.md --html $(RUN)/bench.html

# Two passes: the tests that judge no latency, on every core at once (a file per worker, so a
# file's fixtures are built once); then the few that compare measured latencies, alone, so no
# neighbouring test moves their numbers. Both always run; either failing fails the target.
test: install
	@rc=0; \
	$(BIN)/python -m pytest -q --durations=12 -n $(TEST_WORKERS) --dist loadfile -m "not timing" || rc=$$?; \
	$(BIN)/python -m pytest -q -m timing || rc=$$?; \
	exit $$rc

bench: install
	$(BIN)/python -m pip install -q -r requirements/bench.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements/bench-nodeps.txt
	$(BIN)/python benchmarks/run_all.py

# Bounded fuzzing of the loaders of untrusted files and of the converters with generated
# architectures (not part of make test): FUZZ_EXAMPLES=200.
fuzz: install
	$(BIN)/python -m pip install -q "hypothesis>=6.100"
	$(BIN)/python -m pytest -q -p no:cacheprovider fuzz

lint: install
	$(BIN)/ruff check edgekit tests benchmarks fuzz

clean:
	rm -rf runs .pytest_cache
