# Recoverly: the two set-up commands are `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/recoverly serve --demo

# Parallel workers, one per core; each test module runs in one worker, in collection order.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

schema: $(STAMP)
	$(BIN)/python -c "from recoverly.schema.schema import build_schema; from recoverly.settings import Settings; print(build_schema(Settings()).as_str())" > schema.graphql.tmp
	mv schema.graphql.tmp schema.graphql

bench: $(STAMP)
	$(BIN)/python bench/backup_throughput.py

clean:
	rm -rf $(VENV) .recoverly
