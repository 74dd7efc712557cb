"""Diagnose and recover timings on real stacks; prints numbers, asserts nothing.

    .venv/bin/python benchmarks/recovery.py [--versions 1.20,2.3] [--runs 1]

Per run: stack up -> demo job RUNNING -> TaskManager frozen -> job FAILED ->
diagnose (flow, in process) -> diagnose (CLI, against the same Prefect server)
-> recover (flow, inventory defaults: 15 s stabilisation) with its steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import yaml
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from flink_runbook.demo import faults
from flink_runbook.demo.job import build_demo_job_jar, committed_ids, submit_demo_job, wait_for_job_state
from flink_runbook.demo.stack import DemoStack, StackSettings, demo_inventory
from flink_runbook.demo.versions import resolve_flink_version
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.flows.recover import recover_flow
from flink_runbook.polling import wait_until


def one_run(client, version: str, api_url: str, timings: dict[str, list[float]]) -> None:
    def note(label: str, seconds: float) -> None:
        timings.setdefault(f"{version} {label}", []).append(seconds)
        print(f"  {label:<40} {seconds:6.1f} s", flush=True)

    jar = build_demo_job_jar(version)
    with tempfile.TemporaryDirectory() as data:
        settings = StackSettings(
            data_dir=Path(data), project=f"bench-{version.replace('.', '')}", flink_version=version, rest_port=18381
        )
        stack = DemoStack(settings, client)
        inventory = Path(data) / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(demo_inventory(settings, jar)))
        try:
            started = time.monotonic()
            stack.up()
            job_id = submit_demo_job(stack.rest, jar)
            wait_for_job_state(stack.rest, job_id, {"RUNNING"}, timeout=60)
            note("stack up -> job RUNNING", time.monotonic() - started)
            wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="ids")
            frozen = time.monotonic()
            faults.freeze(stack.taskmanager())
            wait_for_job_state(stack.rest, job_id, {"FAILED"}, timeout=120)
            note("freeze -> job FAILED", time.monotonic() - frozen)

            started = time.monotonic()
            diagnose_flow(config=str(inventory))
            note("diagnose (flow)", time.monotonic() - started)
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "flink_runbook.cli", "diagnose", "--config", str(inventory)],
                capture_output=True,
                env={**os.environ, "PREFECT_API_URL": api_url},
                timeout=120,
            )
            note("diagnose (CLI, PREFECT_API_URL set)", time.monotonic() - started)

            started = time.monotonic()
            (result,) = [r.to_dict() for r in recover_flow(config=str(inventory), all_clusters=True)]
            note(f"recover (flow) -> {result['status']}", time.monotonic() - started)
            for action in result["actions"]:
                note(f"  {action['action']}", action["duration_s"])
        finally:
            stack.down()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", default="1.20,2.3")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    client = docker.from_env()
    timings: dict[str, list[float]] = {}
    with prefect_test_harness(server_startup_timeout=120):
        api_url = PREFECT_API_URL.value()
        for version in [resolve_flink_version(v) for v in args.versions.split(",")]:
            for run in range(args.runs):
                print(f"Flink {version}, run {run + 1}", flush=True)
                one_run(client, version, api_url, timings)
    if args.runs > 1:
        print("\nmedian / min / max over runs")
        for label, values in timings.items():
            print(f"  {label:<48} {statistics.median(values):6.1f} {min(values):6.1f} {max(values):6.1f} s")


if __name__ == "__main__":
    main()
