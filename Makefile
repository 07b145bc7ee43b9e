# Two commands on a fresh machine with only python3: `make run` and `make test`.
# uv comes from PyPI into .cache/tools; the project's venv is built from the committed uv.lock.
UV_VERSION := 0.13.9
TOOLS := .cache/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# never let uv download a Python: the machine's python3 (3.11+) is the one
export UV_PYTHON_DOWNLOADS := never
# compile the venv once and keep bytecode: some environments set PYTHONDONTWRITEBYTECODE,
# which makes every process (dbt, Dagster steps, workers) recompile dagster & co. from source
export UV_COMPILE_BYTECODE := 1
export PYTHONDONTWRITEBYTECODE :=

.PHONY: install run test test-fast bench lint format dev docs clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python python3
	$(BIN)/python -c "from cascade.lake.extensions import ensure_installed; ensure_installed()"
	touch $@

install: $(VENV)/.installed

run: install  ## the main job: demo Nightscout -> lake, on the local profile
	$(BIN)/cascade run

test: install  ## the whole suite (PostgreSQL + S3 tests included where PostgreSQL is reachable), on two workers
	$(BIN)/pytest -n 2 --dist worksteal

test-fast: install  ## unit tests only: seconds, no lake, no network
	$(BIN)/pytest tests/unit -q

bench: install  ## benchmark scripts that print throughput, ratios and memory
	@for script in ingest transform backfill year hourly dbt_floor health report many_sites scale_out; do \
	  echo "== benchmarks/$$script.py"; $(BIN)/python benchmarks/$$script.py || exit 1; \
	done

lint: install  ## ruff, and sqlfluff on the dbt models (rules and ignores in .sqlfluff)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/sqlfluff lint transforms/dbt

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

dev: install  ## the Dagster UI
	$(BIN)/cascade dev

docs: install  ## dbt docs of the lake's models
	$(BIN)/cascade docs

clean:
	rm -rf $(VENV) .cascade .pytest_cache .ruff_cache
