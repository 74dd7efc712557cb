"""The runbook's incident, reproduced on a real Flink cluster in Docker.

Job RUNNING -> TaskManager frozen (docker pause) -> the JobManager reports the
TaskManager's heartbeat timeout -> the job ends FAILED with the fixed-delay
restart strategy exhausted, and its last checkpoint is retained on disk.
"""

from __future__ import annotations

import re
import time

from flink_runbook.containers.states import PROJECT_LABEL, SERVICE_LABEL
from flink_runbook.demo import faults
from flink_runbook.demo.job import committed_ids, wait_for_job_state

from .conftest import one_release, run_demo_job

# 1.20's ResourceManager says "The heartbeat of TaskManager with id X timed out.",
# 2.2's JobMaster says "Heartbeat of TaskManager with id X timed out." (the seed's words).
HEARTBEAT_TIMEOUT = re.compile(r"[Hh]eartbeat of TaskManager with id (\S+) timed out")
RESTARTS_EXHAUSTED = "Recovery is suppressed by FixedDelayRestartBackoffTimeStrategy(maxNumberRestartAttempts=3"


@one_release  # our own logic, whatever the release (README: Tests)
def test_stack_is_a_compose_stack_reachable_only_on_loopback(running_stack):
    stack = running_stack
    for service in ("jobmanager", "taskmanager"):
        container = stack.container(service)
        assert container.labels[PROJECT_LABEL] == stack.settings.project
        assert container.labels[SERVICE_LABEL] == service
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        # deploy.resources.limits reached the engine (Compose --compatibility).
        assert container.attrs["HostConfig"]["Memory"] > 0
        bindings = container.attrs["HostConfig"]["PortBindings"] or {}
        assert all(b["HostIp"] == "127.0.0.1" for published in bindings.values() for b in published)
    assert stack.jobmanager().attrs["HostConfig"]["PortBindings"]["8081/tcp"][0]["HostPort"] == str(
        stack.settings.rest_port
    )
    assert stack.rest.cluster_overview().flink_version == stack.settings.flink_version


def test_frozen_taskmanager_fails_the_job_like_the_runbook(disposable_stack, demo_job_jar):
    stack = disposable_stack
    job_id = run_demo_job(stack, demo_job_jar)
    taskmanager_ids = {tm.id for tm in stack.rest.taskmanagers()}
    assert len(taskmanager_ids) == 1

    frozen_at = time.monotonic()
    faults.freeze(stack.taskmanager())
    job = wait_for_job_state(stack.rest, job_id, {"FAILED", "CANCELED", "FINISHED"}, timeout=120)
    print(f"\nFlink {stack.settings.flink_version}: freeze -> FAILED in {time.monotonic() - frozen_at:.1f}s")
    assert job.state == "FAILED"

    # The container still looks alive to `docker ps`, as in the runbook.
    container = stack.taskmanager()
    container.reload()
    assert container.status == "paused"

    # The exception history: newest first; the root cause is the exhausted restart strategy,
    # and the first failure is the heartbeat timeout of the TaskManager we froze.
    entries = stack.rest.job_exceptions(job_id).entries
    assert entries[0].restart_strategy_exhausted and RESTARTS_EXHAUSTED in entries[0].message
    assert {e.heartbeat_timeout_of for e in entries if e.heartbeat_timeout_of} == taskmanager_ids

    # The JobManager log says the same, with the same TaskManager id.
    log = stack.jobmanager().logs().decode(errors="replace")
    assert {m.group(1) for m in HEARTBEAT_TIMEOUT.finditer(log)} == taskmanager_ids
    assert RESTARTS_EXHAUSTED in log

    # The last completed checkpoint survived the failure (RETAIN_ON_CANCELLATION).
    latest = stack.rest.job_checkpoints(job_id).latest_completed
    assert latest.external_path.startswith("file:/data/checkpoints/")
    on_host = stack.settings.data_dir / latest.external_path.removeprefix("file:/data/")
    assert (on_host / "_metadata").is_file()

    # What the sink committed before the failure is a gap-free prefix of the sequence.
    ids = committed_ids(stack.output_dir)
    assert ids, "the sink committed nothing before the failure"
    assert ids == list(range(1, len(ids) + 1))
