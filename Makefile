# deepdetect: the README's commands. `make demo` and `make test` each set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deepdetect-installed
DEMO_DIR ?= outputs/demo
REFERENCE_DIR ?= outputs/reference
PYTEST_ARGS ?=

FAMILIES_DIR ?= outputs/lofo
DEV_DATA ?= $(or $(DEEPDETECT_DEV_DATA),../shared/data)

.PHONY: help install prepare demo reference reference-check families test test-slow test-all lint format typecheck bench bench-gpu bench-quick clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m deepdetect.cli.prepare
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install deepdetect with the dev tools (and export the face detector's nets)

prepare: $(STAMP)  ## export MTCNN's nets to ONNX into the cache (done by install; again after a facenet-pytorch upgrade)
	$(BIN)/python -m deepdetect.cli.prepare

demo: $(STAMP)  ## build a sample set, then extract -> train -> evaluate -> export -> predict (offline, CPU)
	$(BIN)/deepdetect-demo output_dir=$(DEMO_DIR)

reference: $(STAMP)  ## the reference detector on ../shared/data (or DEEPDETECT_DEV_DATA): extract -> train face-swap + self-blend experts -> fuse -> evaluate -> export
	$(BIN)/deepdetect-reference output_dir=$(REFERENCE_DIR)

reference-check: $(STAMP)  ## after make reference: its ONNX through deepdetect-predict on the families and unseen reals, measured per family
	$(BIN)/deepdetect-predict $(DEV_DATA)/families $(DEV_DATA)/photos $(DEV_DATA)/videos \
		--model $(REFERENCE_DIR)/export/model.onnx --output $(REFERENCE_DIR)/families_predict.jsonl --overwrite
	$(BIN)/deepdetect-evaluate-records $(REFERENCE_DIR)/families_predict.jsonl --labels $(DEV_DATA)/families/pairs.csv \
		--real $(DEV_DATA)/photos --real $(DEV_DATA)/videos --exclude-group ffpp_000_003 \
		-o $(REFERENCE_DIR)/families_predict.json --plot $(REFERENCE_DIR)/families_predict.png

families: $(STAMP)  ## leave one manipulation family out on ../shared/data -> docs/results/families.json + RESULTS section
	$(BIN)/deepdetect-lofo output_dir=$(FAMILIES_DIR) results_json=docs/results/families.json
	$(BIN)/python -m deepdetect.studies.table docs/results/families.json docs/RESULTS.md

test: $(STAMP)  ## fast test suite (slow and gpu tests deselected)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)  ## slow tests only (kill/resume, full pipelines)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5 = no slow test collected

test-all: $(STAMP)  ## every CPU test
	$(BIN)/python -m pytest -q -m 'not gpu' $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff (lint + format check), mypy and the import layers (lint-imports)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests scripts bench
	$(BIN)/ruff format src tests scripts bench

bench: $(STAMP)  ## benchmarks -> bench/results/*.json
	$(BIN)/python bench/run.py --out bench/results

bench-gpu: $(STAMP)  ## GPU benchmarks (training feed, MTCNN, ORT CUDA EP, predict s/video) -> bench/results/gpu.json
	$(BIN)/python bench/run.py --out bench/results --only gpu

bench-quick: $(STAMP)  ## quick benchmarks (< a few minutes)
	$(BIN)/python bench/run.py --out bench/results --quick

clean:  ## remove build outputs (keeps .venv; `rm -rf .venv` for a full reset)
	rm -rf outputs multirun build dist .pytest_cache .mypy_cache .ruff_cache bench/results src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
