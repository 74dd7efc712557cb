# README's commands. Each target bootstraps what a fresh machine lacks first.
SHELL := /bin/bash
PY := .venv/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: bootstrap demo demo-down compat image serve scale-up test unit lint screenshots bench bench-versus bench-start bench-fleet bench-scale-out

bootstrap:
	@scripts/bootstrap

## The main job: demo stack + local Prefect server + served deployments; the
## runbook's failure is injected, detected and recovered. ARGS="--no-fault",
## ARGS="--config my-inventory.yaml", ARGS="--flink-version 2.2", ARGS="--once".
demo: bootstrap
	$(PY) -m flink_runbook.demo $(ARGS)

## flink-runbook's own image, flink-runbook/flink-runbook:<version> (docs/docker-image.md): built locally, cached.
image: bootstrap
	$(PY) -m flink_runbook.demo image

## Serve every deployment against a local Prefect server (or PREFECT_API_URL) for the demo stack's
## inventory, its history in .prefect-home/. ARGS="--config my-inventory.yaml" serves another.
serve: bootstrap
	.venv/bin/flink-runbook serve --config stack/inventory.yaml --prefect-home .prefect-home $(ARGS)

## The scaled shape on this machine: PostgreSQL + a Prefect server on it + WORKERS process workers,
## deployed from prefect.yaml (UI http://127.0.0.1:4300). ARGS="--config my-inventory.yaml --interval 30".
WORKERS ?= 2
scale-up: bootstrap
	$(PY) -m flink_runbook.infrastructure.scale_up --workers $(WORKERS) $(ARGS)

demo-down: bootstrap
	$(PY) -m flink_runbook.demo stack down

## The whole test suite, integration tests on Flink 1.20 and 2.3 included, on TEST_WORKERS pytest-xdist
## workers (the tests mostly wait on Flink and Prefect, so they overlap well on two cores). --dist loadgroup:
## a free worker takes the next test, or the next xdist_group (tests that must share one worker) whole, in
## collection order, which tests/conftest.py sets: longest first (--no-loadscope-reorder keeps it).
## pytest's exit 5 (no tests collected) is a failure here, not a pass.
TEST_WORKERS ?= 3
test: bootstrap
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

## The README's screenshots (docs/screenshots), made by the operator's-view test on the real stack.
screenshots: bootstrap
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots FLINK_TEST_VERSIONS=1.20 $(PY) -m pytest -q tests/integration/test_operator_view.py tests/integration/test_run_form.py

## Every supported Flink release (1.18 to 2.3) through the incident, one stack at a time: the TaskManager
## frozen, detected, recovered, the sink checked exactly once; prints a table (about 3 minutes a release).
## ARGS="--flink-version 1.18,2.3" for some of them, ARGS="--markdown FILE" to keep the table.
compat: bootstrap
	$(PY) -m flink_runbook.demo compat $(ARGS)

unit: bootstrap
	$(PY) -m pytest tests/unit

lint: bootstrap
	$(PY) -m ruff check .

bench: bootstrap
	$(PY) benchmarks/foundation.py

## flink-runbook against Flink alone (three configurations), the runbook's watchdog loop, and itself
## without and with the fault watcher: the same stack, job and faults (about 40 minutes; prints a table).
bench-versus: bootstrap
	$(PY) benchmarks/versus.py $(ARGS)

## Where the seconds go between a fault and the recovery's first step, trigger's door against the watcher's.
bench-start: bootstrap
	$(PY) benchmarks/start_latency.py $(ARGS)

## The monitor's tick for 1, 10, 100 and 500 clusters, and with 10 % of them hanging (about 5 minutes).
bench-fleet: bootstrap
	$(PY) benchmarks/fleet.py $(ARGS)

## Recoveries on PostgreSQL + 2 workers: one cluster alone, two together, a worker killed (about 10 minutes).
bench-scale-out: bootstrap
	$(PY) benchmarks/scale_out.py $(ARGS)
