"""`make compat`: the runbook's incident on every supported Flink release, one stack at a time; prints a table.

    python -m flink_runbook.demo compat [--flink-version 1.18,2.3] [--markdown FILE]

For each release in turn: its image and demo job (built once, then cached), the demo stack, the demo job
until its sink has committed ids, the TaskManager frozen (`docker pause`), the runbook's checks repeated
until they call the cluster unhealthy (detected), the job left to FAIL, then the recover flow that
`flink-runbook recover` runs, against a local Prefect server (recovered), and the sink read: every id
exactly once. The stack is removed before the next release starts. A release that fails says in its row
which step failed and why; the next release still runs. Exit 0 when every release passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker
import yaml

from flink_runbook.demo import faults
from flink_runbook.demo.image import ensure_flink_image
from flink_runbook.demo.job import (
    build_demo_job_jar,
    committed_ids,
    sink_integrity,
    submit_demo_job,
    wait_for_job_state,
)
from flink_runbook.demo.stack import DemoStack, StackSettings, demo_inventory
from flink_runbook.demo.versions import SUPPORTED_FLINK_VERSIONS, UnsupportedFlinkVersion, resolve_flink_version
from flink_runbook.infrastructure.local_server import TELEMETRY_OFF, start_local_server
from flink_runbook.inventory import load_inventory
from flink_runbook.polling import wait_until

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REST_PORT = 18481  # its own port: a demo or test stack on 8081 may run beside it
# As the recovery tests: a short stabilisation, so a release takes ~2 minutes rather than ~3.
RECOVERY = {"stabilization_s": 5, "verify_timeout_s": 90}
COMMITTED_BEFORE_FAULT = 40  # ids the sink must hold before the freeze: there is a checkpoint to restore
COMMITTED_AFTER = 60  # and after the recovery: the restored job wrote on


@dataclass
class ReleaseRow:
    release: str
    detected: str = "-"
    recovered: str = "-"
    lost: str = "-"
    duplicated: str = "-"
    failed: str | None = None  # "<step>: <why>" when a step did not go through

    @property
    def passed(self) -> bool:
        return self.failed is None and self.lost == "0" and self.duplicated == "0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serious(diagnosis) -> list[str]:
    return sorted({f.code for f in diagnosis.findings if f.severity in ("error", "critical")})


def check_release(client: docker.DockerClient, version: str, workdir: Path, say: Callable[[str], None]) -> ReleaseRow:
    """One release through the incident; never raises (a failed step is the row's `failed`)."""
    from flink_runbook.flows.recover_run import run_recover
    from flink_runbook.runbook.observing.fleet_check import observe_and_diagnose
    from flink_runbook.runbook.observing.observe import Depth
    from flink_runbook.tasks.clients import cluster_clients

    row = ReleaseRow(version)
    step = "build image and demo job"
    stack: DemoStack | None = None
    try:
        ensure_flink_image(client, version)
        jar = build_demo_job_jar(version)
        data = workdir / version
        data.mkdir(parents=True)
        settings = StackSettings(
            data_dir=data, project=f"compat-{version.replace('.', '')}", flink_version=version, rest_port=REST_PORT
        )
        inventory = demo_inventory(settings, jar)
        inventory["clusters"][0]["recovery"] = RECOVERY
        inventory["state_dir"] = str(data / "state")
        inventory_path = data / "inventory.yaml"
        inventory_path.write_text(yaml.safe_dump(inventory))
        (cluster,) = load_inventory(inventory_path).select(None)

        step = "start the demo stack"
        stack = DemoStack(settings, client)
        stack.up()
        step = "run the demo job"
        job_id = submit_demo_job(stack.rest, jar)
        wait_for_job_state(stack.rest, job_id, {"RUNNING"}, timeout=60)
        wait_until(
            lambda: len(committed_ids(stack.output_dir)),
            lambda n: n >= COMMITTED_BEFORE_FAULT,
            timeout=90,
            what=f"{COMMITTED_BEFORE_FAULT} committed ids in {stack.output_dir}",
        )
        say(f"Flink {version}: demo job {job_id} running; freezing the TaskManager")

        step = "detect the frozen TaskManager"
        faults.freeze(stack.taskmanager())
        frozen = time.monotonic()
        clients = cluster_clients(cluster)
        diagnosis = wait_until(
            lambda: observe_and_diagnose(cluster, clients, Depth.QUICK)[0],
            lambda d: not d.healthy,
            timeout=120,
            interval=1,
            what=f"the runbook's checks to call {cluster.name} unhealthy",
        )
        row.detected = f"{', '.join(_serious(diagnosis))} ({time.monotonic() - frozen:.1f} s)"
        say(f"Flink {version}: detected {row.detected}")

        # Docker tells first (the container is paused); what Flink itself says comes with the job's failure.
        step = "wait for the job to fail"
        wait_for_job_state(stack.rest, job_id, {"FAILED"}, timeout=120)
        failed = observe_and_diagnose(cluster, clients, Depth.QUICK)[0]
        row.detected += f"; job FAILED ({time.monotonic() - frozen:.1f} s): {', '.join(_serious(failed))}"
        latest = stack.rest.job_checkpoints(job_id).latest_completed
        checkpoint = latest.external_path if latest else None
        committed_before = len(committed_ids(stack.output_dir))

        step = "recover"
        started = time.monotonic()
        (result,) = [r.to_dict() for r in run_recover(config=str(inventory_path), all_clusters=True)]
        seconds = time.monotonic() - started
        jobs = result.get("jobs") or [{}]
        restored_from = jobs[0].get("restored_from")
        new_job = jobs[0].get("new_id")
        if new_job:
            restored = stack.rest.job_checkpoints(new_job).latest_restored
            restored_from = restored.external_path if restored else restored_from
        from_checkpoint = "yes" if checkpoint and restored_from == checkpoint else f"no ({restored_from or 'nothing'})"
        row.recovered = f"{result['status']} ({seconds:.1f} s), from checkpoint: {from_checkpoint}"
        say(f"Flink {version}: {row.recovered}")
        if result["status"] != "recovered":
            why = next((a.get("error") for a in result.get("actions", []) if a.get("error")), None)
            row.failed = f"recover: status {result['status']}" + (f": {why}" if why else "")

        step = "check the sink"
        ids = wait_until(
            lambda: committed_ids(stack.output_dir),
            lambda found: len(found) >= committed_before + COMMITTED_AFTER,
            timeout=90,
            what=f"{committed_before + COMMITTED_AFTER} committed ids in {stack.output_dir}",
        )
        duplicated, missing = sink_integrity(ids)
        row.lost, row.duplicated = str(missing), str(duplicated)
        say(f"Flink {version}: {len(ids)} ids committed, {missing} lost, {duplicated} duplicated")
    except Exception as exc:  # the row says what failed; the next release still runs
        row.failed = f"{step}: {type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        say(f"Flink {version}: FAILED at {row.failed}")
    finally:
        if stack is not None:
            try:
                stack.down()
            except Exception as exc:
                say(f"Flink {version}: removing stack {stack.settings.project} failed: {exc}")
    return row


def compat_table(rows: list[ReleaseRow]) -> str:
    """The rows as a Markdown table (a failed row says what failed in its last column)."""
    lines = [
        "| release | detected (finding codes, seconds) | recovered (status, seconds, restored from checkpoint?) "
        "| ids lost | ids duplicated | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        verdict = "pass" if row.passed else f"FAILED: {row.failed}" if row.failed else "FAILED: ids lost or duplicated"
        cells = (row.release, row.detected, row.recovered, row.lost, row.duplicated, verdict)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flink_runbook.demo compat", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--flink-version",
        default=",".join(SUPPORTED_FLINK_VERSIONS.values()),
        help="releases to check, comma-separated (default: every supported release)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table, with its date, to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        versions = [resolve_flink_version(v) for v in args.flink_version.split(",") if v.strip()]
    except UnsupportedFlinkVersion as exc:
        print(f"compat: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ.update(TELEMETRY_OFF)
    client = docker.from_env()
    rows: list[ReleaseRow] = []
    with tempfile.TemporaryDirectory(prefix="flink-runbook-compat-") as work:
        server = start_local_server(Path(work) / "prefect-home", port=_free_port())
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                for version in versions:
                    rows.append(check_release(client, version, Path(work), say))
        finally:
            server.stop()
    table = compat_table(rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nCompatibility, {stamp}:\n\n{table}")
    if args.markdown:
        args.markdown.write_text(f"Measured {stamp}.\n\n{table}\n")
    return EXIT_OK if all(r.passed for r in rows) else EXIT_FAILED
