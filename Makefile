# README's commands. Each target bootstraps what a fresh machine lacks first.
SHELL := /bin/bash
PY := .venv/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: bootstrap demo demo-down serve test unit lint bench bench-versus bench-start

bootstrap:
	@scripts/bootstrap

## The main job: demo stack + local Prefect server + served deployments; the
## runbook's failure is injected, detected and recovered. ARGS="--no-fault",
## ARGS="--config my-inventory.yaml", ARGS="--flink-version 2.2", ARGS="--once".
demo: bootstrap
	$(PY) -m flink_runbook.demo $(ARGS)

## Serve every deployment against a local Prefect server (or PREFECT_API_URL).
serve: bootstrap
	$(PY) -m flink_runbook.deployments.serve $(ARGS)

demo-down: bootstrap
	$(PY) -m flink_runbook.cli stack down

## The whole test suite, integration tests on Flink 1.20 and 2.2 included.
## pytest's exit 5 (no tests collected) is a failure here, not a pass.
test: bootstrap
	$(PY) -m ruff check .
	$(PY) -m pytest tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

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
