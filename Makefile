# enrichflow: `make demo` runs the main job on SQLite; `make test` runs lint, types and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Prefect gets its own venv: its pinned server needs an older FastAPI than ours (docs/prefect.md).
PREFECT_VENV := .venv-prefect
PREFECT_STAMP := $(PREFECT_VENV)/.installed

.PHONY: install prefect-venv demo test test-slow lint bench bench-quick clean

install: $(STAMP)

prefect-venv: $(PREFECT_STAMP)

$(PREFECT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PREFECT_VENV)
	$(PREFECT_VENV)/bin/pip install --quiet --upgrade pip
	$(PREFECT_VENV)/bin/pip install --quiet -e '.[prefect]'
	touch $(PREFECT_STAMP)

# The example step plugin is installed too, so the tests run it as any plugin would be run.
EXAMPLE_PLUGIN := examples/enrichflow-title-length

$(STAMP): pyproject.toml $(EXAMPLE_PLUGIN)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e $(EXAMPLE_PLUGIN)
	touch $(STAMP)

demo: install
	rm -f demo.db demo.db-wal demo.db-shm
	mkdir -p out
	$(BIN)/enrichflow run examples/apollo_people_sample.csv --database-url sqlite:///demo.db --out out/demo_leads.csv; \
	  code=$$?; echo "export: out/demo_leads.csv (exit $$code)"; test $$code -le 1

lint: install
	$(BIN)/ruff check src tests bench $(EXAMPLE_PLUGIN)
	$(BIN)/ruff format --check src tests bench $(EXAMPLE_PLUGIN)
	$(BIN)/mypy

test: lint $(PREFECT_STAMP)
	$(BIN)/pytest -q -m "not slow"

test-slow: install $(PREFECT_STAMP)
	$(BIN)/pytest -q -m slow

bench: install $(PREFECT_STAMP)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/steps.py
	$(BIN)/python bench/run.py
	$(BIN)/python bench/callbacks.py
	$(BIN)/python bench/settle.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/reuse.py

# The same benchmarks on small inputs, in well under two minutes; CI runs it so none can rot.
bench-quick: install $(PREFECT_STAMP)
	$(BIN)/python bench/engine.py --quick
	$(BIN)/python bench/steps.py --quick
	$(BIN)/python bench/compare.py HEAD --quick
	$(BIN)/python bench/run.py --quick
	$(BIN)/python bench/callbacks.py --quick
	$(BIN)/python bench/settle.py --quick
	$(BIN)/python bench/latency.py --quick
	$(BIN)/python bench/ingest.py --quick
	$(BIN)/python bench/dashboard.py --quick
	$(BIN)/python bench/reuse.py --quick
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) $(PREFECT_VENV) demo.db* out test-artifacts .mypy_cache .ruff_cache .pytest_cache
