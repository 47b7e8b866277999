# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-fast lint format bench clean

$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/nasnet-app demo --out demo_output

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadgroup -q --durations=10 tests

test-fast: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q -m "not slow" tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: $(VENV)/.installed
	$(PY) evaluate/benchmarks/bench_model.py
	$(PY) evaluate/benchmarks/bench_pipeline.py
	$(PY) evaluate/benchmarks/bench_zoo.py
	$(PY) evaluate/benchmarks/bench_search.py --seeds 20
	$(PY) evaluate/benchmarks/bench_executors.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
