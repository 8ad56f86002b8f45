# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.adr-installed
SAMPLE := data/sample/coco_captions_val2017_sample.jsonl
DEMO   := demo-output

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/install_wordnet.py
	@command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python scripts/install_wordnet.py
	@touch $(STAMP)

demo: install
	$(BIN)/adr stats --input $(SAMPLE) --output $(DEMO)/stats --master 'local[2]'
	$(BIN)/adr rebalance --input $(SAMPLE) --dictionary $(DEMO)/stats --output $(DEMO)/rebalance
	$(BIN)/adr synthesize --rebalanced $(DEMO)/rebalance --dictionary $(DEMO)/stats --output $(DEMO)/synthesize
	@echo "demo outputs: $(DEMO)/stats (dictionary/, entities/, manifest.json), $(DEMO)/rebalance (kept/, dropped/, seeds/, summary.json), $(DEMO)/synthesize (synthetic/, refined/, summary.json)"

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

clean:
	rm -rf $(DEMO) .pytest_cache
