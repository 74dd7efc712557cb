"""The scaled shape, end to end: PostgreSQL + a Prefect server on it + 2 process workers, deployed from
prefect.yaml; a TaskManager frozen on each of two demo stacks; one worker SIGKILLed (with its flow runs,
as when its host dies) during one of the recoveries.

The two workers stand for two hosts: each has a state directory of its own (FLINK_RUNBOOK_STATE_DIR: its own host
locks and job lineage), so nothing but the Prefect server excludes a second recovery of a cluster, and
only the flow-run heartbeats + the zombie automation tell that the killed recovery is gone. On one
release (what differs between releases is covered by the recovery tests on both). Checks the sinks:
every id exactly once.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from flink_runbook.demo import faults
from flink_runbook.demo.drill import recover_runs, running_recovery
from flink_runbook.demo.job import build_demo_job_jar, committed_ids
from flink_runbook.demo.stack import demo_inventory
from flink_runbook.infrastructure.scale_up import POOL, scale_up
from flink_runbook.polling import wait_until
from flink_runbook.serving.processes import flow_run_processes, parent_pid

from .conftest import ONE_VERSION, assert_every_id_exactly_once, free_local_port, run_demo_job

FAST_RECOVERY = {"stabilization_s": 5, "verify_timeout_s": 90, "registration_grace_s": 20}
MONITOR_S = 10


def two_cluster_inventory(stacks, jar, directory):
    """Both stacks in one inventory, no state_dir: each worker ("host") keeps its own."""
    clusters = []
    for stack in stacks:
        cluster = demo_inventory(stack.settings, jar)["clusters"][0]
        cluster.update(recovery=FAST_RECOVERY, monitor={"cooldown_s": 0})
        clusters.append(cluster)
    path = directory / "fleet.yaml"
    path.write_text(yaml.safe_dump({"clusters": clusters}))
    return path


def job_runs(stack) -> bool:
    """The TaskManager runs and the demo job is RUNNING, once."""
    stack.taskmanager().reload()
    running = [j for j in stack.rest.jobs_overview() if j.state == "RUNNING"]
    return stack.taskmanager().status == "running" and len(running) == 1


def finished(run) -> bool:
    return run.state_type is not None and run.state_type.value in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@pytest.mark.timeout(900)
def test_two_clusters_recover_in_parallel_on_two_workers_and_a_killed_workers_recovery_is_finished(
    start_stack, tmp_path
):
    jar = build_demo_job_jar(ONE_VERSION)
    stacks = [start_stack(ONE_VERSION), start_stack(ONE_VERSION)]
    for stack in stacks:
        run_demo_job(stack, jar)
    inventory = two_cluster_inventory(stacks, jar, tmp_path)
    # PostgreSQL runs as its own user: its home must be reachable for it (pytest's tmp_path is not).
    home = Path(tempfile.mkdtemp(prefix="flink-runbook-scale-", dir="/var/tmp"))
    home.chmod(0o755)
    scaled = scale_up(
        home, inventory, workers=0, port=free_local_port(), database_port=free_local_port(),
        monitor_interval_s=MONITOR_S,
    )
    try:
        for name in ("host-a", "host-b"):
            scaled.add_worker(name, limit=2, environment={"FLINK_RUNBOOK_STATE_DIR": str(tmp_path / name)})
        with temporary_settings(updates={PREFECT_API_URL: scaled.api_url}):
            with get_client(sync_client=True) as client:
                deployments = {d.name: d for d in client.read_deployments()}
                assert deployments["recover"].global_concurrency_limit is None  # clusters are not serialised
                wait_until(
                    lambda: {w.name for w in client.read_workers_for_work_pool(POOL) if w.status.value == "ONLINE"},
                    lambda online: {"host-a", "host-b"} <= online,
                    timeout=60,
                    what="both workers online",
                )
            wait_until(
                lambda: [len(committed_ids(s.output_dir)) for s in stacks],
                lambda counts: min(counts) >= 40,
                timeout=90,
                what="40 committed ids on each stack",
            )
            before = [len(committed_ids(s.output_dir)) for s in stacks]
            frozen_at = datetime.now(UTC)
            for stack in stacks:
                faults.freeze(stack.taskmanager())
            names = [s.settings.project for s in stacks]

            # The first recovery whose process runs (and beats) is killed with its worker, as when its host
            # dies; the worker's other flow runs die with it.
            victim, killed_run, pid = wait_until(lambda: running_recovery(names, frozen_at), bool, timeout=120,
                                                 interval=0.2, what="a running recover run")
            worker = next(n for n, w in scaled.workers.items() if w.pid == parent_pid(pid))
            processes = flow_run_processes()
            killed_at = time.monotonic()
            killed = {processes[p] for p in scaled.kill_worker(worker) if p in processes}
            print(f"\nkilled {worker} with its flow runs {sorted(killed)}, during {killed_run.name} of {victim}")

            def settled(stack):
                runs = recover_runs(stack.settings.project, frozen_at)
                return runs if runs and all(finished(r) for r in runs) and job_runs(stack) else None

            outcome = {s.settings.project: wait_until(lambda s=s: settled(s), bool, timeout=420, interval=2,
                                                      what=f"{s.settings.project} recovered")
                       for s in stacks}
            healed_s = time.monotonic() - killed_at
            for name, runs in outcome.items():
                print(name, [(r.name, r.state_type.value, r.start_time, r.end_time) for r in runs])
            print(f"both clusters run again {healed_s:.0f}s after the worker was killed")

        for runs in outcome.values():
            states = {str(r.id): r.state_type.value for r in runs}
            # What died with the worker is Crashed (by its missing heartbeats: no other host could know) ...
            assert all(states[run_id] == "CRASHED" for run_id in killed & set(states)), states
            # ... and nothing else failed: one recovery did the work, a queued duplicate ended Cancelled.
            others = [state for run_id, state in states.items() if run_id not in killed]
            assert set(others) <= {"COMPLETED", "CANCELLED"} and others.count("COMPLETED") <= 1, states
        assert str(killed_run.id) in killed
        # In parallel: each cluster's first recovery started before the other's ended.
        firsts = [runs[0] for runs in outcome.values()]
        assert max(r.start_time for r in firsts) < min(r.end_time for r in firsts), firsts
        finished_by_another = [r for r in outcome[victim] if r.state_type.value == "COMPLETED"]
        print(f"{victim}: " + (f"finished by {finished_by_another[0].name} on the other worker" if finished_by_another
                               else "the killed run had already fixed it; nothing was left to finish"))
        for stack, count in zip(stacks, before, strict=True):
            assert_every_id_exactly_once(stack, at_least=count + 40)
    finally:
        scaled.stop()
        shutil.rmtree(home, ignore_errors=True)
