# One command per task, identical locally and in CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AICOMMONS_DATA_DIR ?= $(CURDIR)/.data

.PHONY: install serve test test-fast lint conformance bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel on this machine; a looser pin would pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/aicommons serve

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: $(STAMP)
	$(BIN)/python -m compileall -q src tests

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
