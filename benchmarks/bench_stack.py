"""The set-up the served benchmarks share: a work dir, a demo stack of its own, a local Prefect server."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import yaml

from flink_runbook.demo.job import build_demo_job_jar, submit_demo_job
from flink_runbook.demo.stack import DemoStack, StackSettings, drill_inventory
from flink_runbook.demo.versions import resolve_flink_version
from flink_runbook.infrastructure.local_server import TELEMETRY_OFF, LocalPrefectServer, start_local_server


def bench_stack(
    prefix: str, rest_port: int, server_port: int, flink_version: str | None
) -> tuple[Path, str, DemoStack, LocalPrefectServer]:
    """(work dir, Flink version, the stack (not up yet), the started server); PREFECT_API_URL points at it."""
    os.environ.update(TELEMETRY_OFF)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    version = resolve_flink_version(flink_version)
    project = f"bench-{uuid.uuid4().hex[:6]}"
    stack = DemoStack(
        StackSettings(data_dir=work / "data", project=project, flink_version=version, rest_port=rest_port)
    )
    server = start_local_server(work / "prefect-home", port=server_port)
    os.environ["PREFECT_API_URL"] = server.api_url
    return work, version, stack, server


def up_with_the_demo_job(stack: DemoStack, work: Path, version: str) -> tuple[Path, Path]:
    """Bring the stack up with the demo job running; (the job's jar, an inventory for back-to-back drills)."""
    stack.up()
    jar = build_demo_job_jar(version)
    submit_demo_job(stack.rest, jar)
    inventory = work / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(drill_inventory(stack.settings, jar, work / "state")))
    return jar, inventory
