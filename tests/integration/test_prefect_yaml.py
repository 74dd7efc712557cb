"""prefect.yaml, the way README's scale-out note uses it: a process work pool, `prefect deploy --all`, a worker.

It gets a Prefect server of its own, so the monitor schedule it deploys never
reaches the other tests' server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.settings import PREFECT_API_URL, temporary_settings

from flink_runbook.infrastructure.local_server import TELEMETRY_OFF, start_local_server

from .conftest import free_local_port, one_release, write_inventory

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def prefect_cli(api_url: str, *args: str, timeout: float = 180) -> str:
    env = {**os.environ, **TELEMETRY_OFF, "PREFECT_API_URL": api_url}
    result = subprocess.run(
        [PREFECT, "--no-prompt", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@one_release
def test_prefect_yaml_deploys_everything_and_a_process_worker_runs_it(running_stack, tmp_path):
    server = start_local_server(tmp_path / "prefect-home", port=free_local_port())
    try:
        api = server.api_url
        prefect_cli(api, "work-pool", "create", "flink-runbook", "--type", "process")
        prefect_cli(api, "deploy", "--all")
        with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            deployments = {d.name: d for d in client.read_deployments()}
            assert set(deployments) == {"monitor", "recover", "diagnose", "audit"}
            client.pause_deployment(deployments["monitor"].id)  # only the runs below may execute
            monitor, recover, audit = deployments["monitor"], deployments["recover"], deployments["audit"]
            assert [s.schedule.interval.total_seconds() for s in monitor.schedules] == [30]
            assert [(s.schedule.cron, s.schedule.timezone) for s in audit.schedules] == [("0 6 * * *", "UTC")]
            assert audit.parameters == {"config": "stack/inventory.yaml"}  # reports only: fix stays False
            assert monitor.concurrency_options.collision_strategy.value == "CANCEL_NEW"
            # Recoveries of different clusters run in parallel: the exclusion is per cluster, in the flow.
            assert recover.concurrency_limit is None and recover.global_concurrency_limit is None
            for deployment in (monitor, recover):
                assert deployment.work_pool_name == "flink-runbook"
            (trigger,) = client.read_automations_by_name("flink-runbook: recover an unhealthy cluster")
            assert trigger.trigger.expect == {"flink.cluster.unhealthy"}
            assert trigger.trigger.match.model_dump() == {
                "prefect.resource.id": "flink.cluster.*",
                "flink.recovery": "recover",
            }
            assert trigger.actions[0].deployment_id == recover.id
            assert trigger.actions[0].parameters["cluster"] == "{{ event.resource.name }}"
            assert trigger.actions[0].parameters["guarded"] is True  # a forged event cannot skip the guard

        inventory = write_inventory(running_stack, tmp_path)
        prefect_cli(api, "deployment", "run", "diagnose/diagnose", "--param", f"config={inventory}")
        prefect_cli(api, "deployment", "run", "audit/audit", "--param", f"config={inventory}")
        prefect_cli(api, "worker", "start", "--pool", "flink-runbook", "--run-once", timeout=300)

        with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            for name in ("diagnose", "audit"):
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployments[name].id]))
                )
                (run,) = [r for r in runs if r.state_type.value != "SCHEDULED"]  # not tomorrow's audit
                assert run.state_type.value == "COMPLETED", (name, run.state)
                artifacts = client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
                )
                keys = {a.key for a in artifacts}
                assert f"{name}-{running_stack.settings.project}" in keys, keys
    finally:
        server.stop()
