# logpipe's entry points. The two a new user needs:
#   make demo   install what is missing, build, start the local stack, run the pipeline
#   make test   every test: unit (ctest), integration against the real stack, the
#               Airflow DAGs end to end, then the sanitizer build and the fuzzers
# Everything else is a step of those two.
SHELL := /bin/bash
BUILD ?= build
BUILD_ASAN ?= build-asan
PY := .venv/bin/python

.PHONY: bundle all deps build unit integration test-airflow test-cluster test-rolling test test-asan fuzz bench bench-cluster bench-smoke demo stack-up stack-down stack-status lint clean

all: build

deps:
	bash stack/deps.sh

build:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)

# The folder MWAA reads from its bucket: dags/, plugins.zip (operators +
# a portable logpipe), requirements.txt (deploy/bundle.sh, docs/deploy.md).
bundle: deps
	bash deploy/bundle.sh

unit: build
	ctest --test-dir $(BUILD) --output-on-failure

integration: build
	bash stack/stack.sh up
	LOGPIPE_BIN=$(CURDIR)/$(BUILD)/logpipe $(PY) -m pytest -q --durations=15 tests/integration

# The DAGs and operators in the local Airflow's venv (Airflow importable),
# against the same running stack, Airflow included.
test-airflow: build
	bash stack/stack.sh up
	LOGPIPE_BIN=$(CURDIR)/$(BUILD)/logpipe bash stack/airflow.sh --python -m pytest -q --durations=10 tests/airflow

# Failover tests on a three-broker Kafka and three-node Elasticsearch cluster
# of their own (stack/cluster.sh), brought up for them and down after them,
# pass or fail: they kill brokers and stop nodes, never the shared stack's.
# The rolling restart of all three brokers is among them (5.5 of the
# stage's 11.5 minutes); make test-rolling runs it alone.
test-cluster: build
	bash stack/stack.sh cluster up && \
	  LOGPIPE_BIN=$(CURDIR)/$(BUILD)/logpipe $(PY) -m pytest -q -s --durations=10 tests/cluster; \
	  rc=$$?; bash stack/stack.sh cluster down; exit $$rc

test-rolling: build
	bash stack/stack.sh cluster up && \
	  LOGPIPE_BIN=$(CURDIR)/$(BUILD)/logpipe $(PY) -m pytest -q -s -m rolling tests/cluster; \
	  rc=$$?; bash stack/stack.sh cluster down; exit $$rc

lint:
	.venv/bin/ruff check .
	bash deploy/actionlint.sh

# Everything: the release build's unit and integration tests, lint, the
# Airflow tests, the cluster failover tests (release build only), then the
# unit and integration suites again with AddressSanitizer +
# UndefinedBehaviorSanitizer (the integration tests that run logpipe), a short fuzz run and a benchmark smoke run (the
# parse stage at quick sizes).
test: deps
	$(MAKE) unit
	$(MAKE) lint
	$(MAKE) integration
	$(MAKE) test-airflow
	$(MAKE) test-cluster
	$(MAKE) test-asan
	$(MAKE) fuzz
	$(MAKE) bench-smoke

# Integration tests that never run the sanitized binary, so a second pass
# under ASan would repeat the release pass to the byte: the bundle and deploy
# tests build their own logpipe (deploy/bundle.sh), the stack tests run no
# logpipe, and valgrind cannot run beside ASan (it swaps in the release build).
SANITIZER_INDEPENDENT := test_bundle.py test_deploy.py test_stack.py test_valgrind.py

test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOGPIPE_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN)
	ctest --test-dir $(BUILD_ASAN) --output-on-failure
	bash stack/stack.sh up
	LOGPIPE_BIN=$(CURDIR)/$(BUILD_ASAN)/logpipe $(PY) -m pytest -q --durations=15 tests/integration \
	  $(addprefix --ignore=tests/integration/,$(SANITIZER_INDEPENDENT))

# Each libFuzzer target for FUZZ_SECONDS (a short run in make test, 25 s
# each so that the rolling restart fits its 75 minutes; run longer by hand,
# e.g. make fuzz FUZZ_SECONDS=3600). Corpora grow in
# build-fuzz/corpus; the seeds in fuzz/corpus stay small and reviewed.
FUZZ_SECONDS ?= 25
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DLOGPIPE_FUZZ=ON >/dev/null
	cmake --build build-fuzz
	for t in parse timestamp json bulk_response; do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	    build-fuzz/corpus/$$t fuzz/corpus/$$t 2>&1 | grep -E '^(stat::number_of_executed_units|Done|==[0-9]+==ERROR)|SUMMARY' \
	    || exit 1; \
	  test $${PIPESTATUS[0]} -eq 0 || { echo "fuzz_$$t found a failure (crash-* file written)"; exit 1; }; \
	done

# Benchmarks (bench/run.py; docs/performance.md): logpipe against its
# baselines, side by side in one run. BENCH_MODE=quick (minutes) or full.
BENCH_MODE ?= quick
BENCH_STAGES ?= parse,produce,consume,latency,scaling
BENCH_OUT ?= $(CURDIR)/bench/results
bench: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOGPIPE_BENCH=ON >/dev/null
	cmake --build $(BUILD)
	.venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt
	bash stack/stack.sh up
	.venv/bin/python bench/run.py --mode $(BENCH_MODE) --stages $(BENCH_STAGES) --out $(BENCH_OUT)

# The scaling stage on the three-broker, three-node cluster (stack/cluster.sh):
# 1/2/4/6 consumers on a 6-partition topic; the cluster is brought up for it
# and down after it. Not part of make test (docs/performance.md).
bench-cluster: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOGPIPE_BENCH=ON >/dev/null
	cmake --build $(BUILD)
	.venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt
	bash stack/stack.sh cluster up && \
	  .venv/bin/python bench/run.py --mode $(BENCH_MODE) --stages cluster --out $(BENCH_OUT); \
	  rc=$$?; bash stack/stack.sh cluster down; exit $$rc

# The smoke run make test includes: the parse stage, quick sizes, results
# written to build/ so a test run leaves the committed results alone.
bench-smoke: deps
	$(MAKE) bench BENCH_STAGES=parse BENCH_OUT=$(CURDIR)/$(BUILD)/bench-results

demo: deps build
	bash stack/stack.sh up
	bash stack/demo.sh $(BUILD)/logpipe

stack-up:
	bash stack/stack.sh up
stack-down:
	bash stack/stack.sh down
stack-status:
	bash stack/stack.sh status

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
