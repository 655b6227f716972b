# One command per task, identical locally and in CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AICOMMONS_DATA_DIR ?= $(CURDIR)/.data

.PHONY: install lock serve test test-scale test-xet lint conformance conformance-fast conformance-xet bench bench-search bench-inference bench-metadata bench-storage bench-upload bench-datasets bench-spaces bench-mirror bench-web clean

$(STAMP): pyproject.toml requirements.lock package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel on this machine; a looser pin would pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# Every other package at the version in requirements.lock (a constraints file), so that a fresh
	# machine installs what CI last tested.
	$(BIN)/pip install --quiet -c requirements.lock -e '.[all]'
	# Node packages the tests use (axe-core for the web UI's accessibility checks), at the locked versions.
	npm ci --no-audit --no-fund --silent
	touch $(STAMP)

# Rewrite requirements.lock from the installed environment, after changing pyproject.toml.
lock: $(STAMP)
	{ sed -n '1,2p' requirements.lock; $(BIN)/pip freeze --exclude-editable | grep -v '^torch=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/aicommons serve

# Everything CI guards: the test suite on SQLite + local disk, the compatibility/contract/scale
# tests again on PostgreSQL + S3, a subset again with the clients' default (Xet on), and the fast
# subset of huggingface_hub's own suite.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q
	$(MAKE) --no-print-directory test-scale
	$(MAKE) --no-print-directory test-xet
	$(MAKE) --no-print-directory conformance-fast

# The suite uploads through LFS unless a test turns Xet on; users upload through Xet (hf_xet is
# huggingface_hub's default). These files again with Xet on for every client, but for the tests
# marked lfs_path (docs/deploy.md, "The Xet path").
XET_SUBSET := tests/compat/test_hf_api.py tests/compat/test_ml_clients.py tests/compat/test_storage_accounting.py \
	tests/compat/test_storage_quota.py tests/compat/test_history_purge.py tests/compat/test_audit.py
test-xet: $(STAMP)
	AICOMMONS_TEST_XET=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not lfs_path" $(XET_SUBSET)

# The whole compatibility suite again on PostgreSQL + S3 (moto), plus the contract and scale tests.
test-scale: $(STAMP)
	AICOMMONS_TEST_BACKEND=postgres-s3 $(BIN)/python -m pytest -n 2 --dist loadfile -q tests/compat tests/contracts tests/scale tests/inference/test_hub_e2e.py tests/api/test_authz_matrix.py \
		tests/api/test_hostile_input.py tests/api/test_fuzz_openapi.py

# huggingface_hub's own test suite against a fresh server (downloads the pinned sdist at run time);
# rewrites docs/compatibility.md.
conformance: $(STAMP)
	$(BIN)/python conformance/run.py

conformance-xet: $(STAMP)
	$(BIN)/python conformance/run.py --xet

# The documented fast subset that CI runs; fails below the recorded pass-rate threshold.
conformance-fast: $(STAMP)
	$(BIN)/python conformance/run.py --fast

bench-search: $(STAMP)
	$(BIN)/python bench/search_bench.py --repos 1000000

# Web pages at 100,000 repos: repo card/files/history and listing pages, one at a time, p50/p95
# (bench/web_bench.py; figures in bench/web_results.json and docs/benchmarks.md).
bench-web: $(STAMP)
	$(BIN)/python bench/web_bench.py --repos 100000

# CPU inference benchmarks against transformers serve and sentence-transformers (docs/benchmarks.md).
bench-inference: $(STAMP)
	$(BIN)/python -m bench.inference.cpu_bench --json bench/inference/results/cpu-latest.json

# Metadata paths at scale (issue 10): 100,000 repos on SQLite and on PostgreSQL, a real server driven
# by wrk with 64 connections, snapshot_download against nginx; writes bench/metadata/results/ and its
# section of docs/benchmarks.md. Needs the Debian packages wrk, nginx and postgresql-15.
bench-metadata: $(STAMP)
	$(BIN)/python -m bench.metadata

# The chunk store (issue 11): storage growth per revision through Xet and LFS, ingest vs sha256sum,
# HTTP downloads vs nginx sendfile, Xet vs HTTP download; writes bench/storage_results.json and prints
# the table of docs/benchmarks.md. Needs the Debian packages nginx and curl.
bench-storage: $(STAMP)
	$(BIN)/python -m bench.storage

# Uploads at line rate (issue 21): LFS, Xet, upload_folder and a 4 KiB change vs sha256sum + curl -T to a
# WebDAV nginx, medians of 3 rounds, server CPU and memory; py-spy profiles of the server in
# bench/upload_profiles/. BENCH_UPLOAD_MIB sets the file size (1024). Needs nginx and curl.
bench-upload: $(STAMP)
	$(BIN)/python -m bench.upload_bench --profile bench/upload_profiles

# The Parquet conversion job vs datasets' load_dataset(...).to_parquet on the same files (docs/benchmarks.md).
bench-datasets: $(STAMP)
	$(BIN)/python bench/datasets_bench.py
	$(BIN)/python bench/viewer_bench.py

# Spaces: cold start with a cached environment, wake, proxy overhead, memory (docs/benchmarks.md).
bench-spaces: $(STAMP)
	$(BIN)/python bench/spaces_bench.py --json bench/spaces_results.json

# The pull-through mirror (issue 12): first download through the mirror vs straight from the upstream,
# cached download vs nginx sendfile, on loopback, with every process's CPU seconds (the mirror's by
# thread); writes bench/mirror_results.json. BENCH_MIRROR_MIB sets the file size (512),
# BENCH_MIRROR_ROUNDS the rounds (3), BENCH_MIRROR_BASELINE_SRC=DIR adds a mirror running other code
# for an A/B in one run, BENCH_MIRROR_PRIME=0 skips the scratch write before each first download.
# Needs nginx and curl.
bench-mirror: $(STAMP)
	$(BIN)/python -m bench.mirror_bench

bench: bench-search bench-inference bench-metadata bench-storage bench-upload bench-datasets bench-spaces bench-mirror

# ruff (rules chosen in pyproject.toml), import-linter (the layers of ARCHITECTURE.md) and mypy (strict
# on hub, db, storage and gitrepo; [tool.mypy] in pyproject.toml); CI runs it.
lint: $(STAMP)
	$(BIN)/python -m compileall -q src tests bench
	$(BIN)/ruff check src tests bench conformance
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
