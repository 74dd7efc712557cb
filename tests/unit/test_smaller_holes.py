"""Safety II, smaller holes: each one a test that failed before its fix (issue "Safety II", case 10)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flink_runbook.audit.compose_file import ComposeFileError, read_compose_file
from flink_runbook.inventory import ClusterSpec, InventoryError, JobSpec, RestSettings, load_inventory
from flink_runbook.polling import wait_until
from flink_runbook.runbook.acting.act import RecoveryError, run_resubmit_command
from flink_runbook.runbook.clients import ClusterClients
from flink_runbook.runbook.deciding.approval import needs_approval, risky_steps
from flink_runbook.runbook.deciding.guard import GuardAction, GuardDecision
from flink_runbook.runbook.deciding.plan import plan_recovery
from flink_runbook.runbook.keeping.host_lock import cluster_lock, is_held, lock_file
from flink_runbook.runbook.keeping.lineage import read_lineage, remember_job_ids
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.fault_watch import Fault
from flink_runbook.runbook.observing.observe import JobManagerView, RestProblem, observe_cluster
from flink_runbook.runbook.reporting.events import cluster_event, escalation_events, fault_event
from flink_runbook.runbook.reporting.notices import approval_needed_notice, unhealthy_notice
from flink_runbook.serving.processes import is_alive

from .recorded import recorded_answers, recorded_rest
from .test_findings import CLUSTER, observed
from .test_recovery_plan import jm_container, tm_container, with_containers

INVENTORY = """
clusters:
  - name: realtime-pipeline
    rest: {url: "http://127.0.0.1:18081"}
    containers: {compose_project: realtime-pipeline}
    expected_taskmanagers: 2
    jobs:
      - name: cdc
        parallelism: 2
"""


def write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", *args], capture_output=True, text=True, timeout=60
    )


# c. A 400-digit integer is an input error, not an OverflowError.

HUGE = "1" + "0" * 399


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("parallelism: 2", f"parallelism: {HUGE}"),
            r"clusters\[0\]\.jobs\[0\]\.parallelism: must be at most 100000, "
            r"got an integer of 400 digits \(100000\.\.\.\)",
        ),
        (
            ("expected_taskmanagers: 2", f"expected_taskmanagers: 2\n    recovery: {{verify_timeout_s: -{HUGE}}}"),
            r"clusters\[0\]\.recovery\.verify_timeout_s: must be at least 1, got an integer of 400 digits",
        ),
    ],
)
def test_a_400_digit_integer_is_an_input_error(tmp_path, change, message):
    path = write(tmp_path, INVENTORY.replace(*change))
    with pytest.raises(InventoryError, match=message) as error:
        load_inventory(path)
    assert str(error.value).startswith(f"{path}: ")


def test_an_integer_python_cannot_read_is_an_input_error_at_its_line(tmp_path):
    path = write(tmp_path, INVENTORY.replace("parallelism: 2", f"parallelism: {'9' * 5000}"))
    with pytest.raises(InventoryError, match=r"not valid YAML at line 9, column 22: an integer of 5000 characters"):
        load_inventory(path)


def test_the_cli_says_so_with_exit_2_and_no_traceback(tmp_path):
    path = write(tmp_path, INVENTORY.replace("parallelism: 2", f"parallelism: {HUGE}"))
    result = cli("diagnose", "--config", str(path))
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"flink-runbook: {path}: clusters[0].jobs[0].parallelism: must be at most")


# d. A key written twice is refused, not last-wins.


def test_a_key_written_twice_is_refused_with_the_file_the_key_and_both_lines(tmp_path):
    path = write(tmp_path, INVENTORY.replace("parallelism: 2", "parallelism: 2\n        parallelism: 4"))
    with pytest.raises(InventoryError) as error:
        load_inventory(path)
    assert str(error.value) == (
        f"{path}: line 10: key 'parallelism' appears twice in the same mapping (first at line 9); "
        "YAML would keep only the last one without a word: remove one"
    )
    result = cli("diagnose", "--config", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'parallelism' appears twice" in result.stderr


def test_a_second_clusters_list_is_refused_not_the_first_one_dropped(tmp_path):
    second = "clusters:\n  - name: other\n    rest: {url: 'http://127.0.0.1:1'}\n    containers: {compose_project: x}\n"
    with pytest.raises(InventoryError, match=r"line 10: key 'clusters' appears twice .*\(first at line 2\)"):
        load_inventory(write(tmp_path, INVENTORY + second))


def test_a_merge_key_may_still_be_overridden(tmp_path):
    text = INVENTORY.replace("jobs:\n", "job_defaults: &defaults {parallelism: 1}\n    jobs:\n").replace(
        "        parallelism: 2", "        <<: *defaults\n        parallelism: 2"
    )
    # The anchor is written in an unknown key: the inventory refuses it by name, not as a duplicate.
    with pytest.raises(InventoryError, match=r"clusters\[0\]\.job_defaults: unknown key"):
        load_inventory(write(tmp_path, text))


def test_the_audit_refuses_a_compose_file_with_a_key_written_twice(tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "x-flink: &flink {image: flink:1.20}\n"
        "services:\n"
        "  taskmanager:\n"
        "    <<: *flink\n"
        "    image: flink:2.2\n"  # overrides the merged key: fine
        "    mem_limit: 2g\n"
        "    mem_limit: 512m\n"  # Compose refuses this file too (mapping key already defined)
    )
    with pytest.raises(ComposeFileError, match=r"line 7: key 'mem_limit' appears twice .*\(first at line 6\)"):
        read_compose_file(compose)


# a. A resubmit_command without {job_id} is not idempotent: warned at load, risky, killed as a group.

WITHOUT_JOB_ID = INVENTORY.replace(
    "        parallelism: 2", "        parallelism: 2\n        resubmit_command: [submit.sh, '{restore_path}']"
)


def test_a_resubmit_command_without_job_id_is_warned_at_load(tmp_path):
    path = write(tmp_path, WITHOUT_JOB_ID)
    (warning,) = load_inventory(path).warnings
    assert warning.startswith(f"{path}: clusters[0].jobs[0].resubmit_command: has no {{job_id}}")
    assert "a human approves it" in warning
    with_id = WITHOUT_JOB_ID.replace("'{restore_path}'", "'{restore_path}', '--job-id={job_id}'")
    assert load_inventory(write(tmp_path, with_id, "with-id.yaml")).warnings == ()
    result = cli("diagnose", "--config", str(path), "--cluster", "third")  # the warning comes first, at load
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == f"flink-runbook: warning: {warning}"


def resubmit_plan(command: tuple[str, ...]):
    """The runbook's own fix of a dead TaskManager (restart it, resubmit from the newest checkpoint), for a
    job resubmitted with `command`."""
    seen = with_containers(observed("1.20.3", "failed-heartbeat-timeout"), jm_container(), tm_container("exited"))
    cluster = dataclasses.replace(CLUSTER, jobs=(JobSpec(name="realtime-cdc-demo", resubmit_command=command),))
    return cluster, plan_recovery(cluster, diagnose(cluster, seen))


def test_its_resubmission_is_a_risky_step():
    cluster, plan = resubmit_plan(("submit.sh", "{restore_path}"))
    assert [(a.target, a.older_than_newest) for a in plan.resubmits] == [("realtime-cdc-demo", False)]
    (risk,) = risky_steps(plan, None, cluster.jobs)
    assert risk.startswith("resubmits job realtime-cdc-demo with its resubmit_command, which has no {job_id}")
    assert needs_approval("risky", plan, (risk,))
    cluster, plan = resubmit_plan(("submit.sh", "{restore_path}", "--job-id={job_id}"))
    assert risky_steps(plan, None, cluster.jobs) == ()  # idempotent: safe alone, as before


def test_a_resubmit_command_that_times_out_is_killed_with_every_process_it_started(tmp_path):
    answers = recorded_answers("1.20.3", "failed-heartbeat-timeout")  # the job FAILED: none of its name is live
    rest, _ = recorded_rest("http://127.0.0.1:8081", answers, answers["job"]["jid"])
    pids = tmp_path / "pids"
    # A wrapper that starts the real submission in the background and waits: the case subprocess.run's
    # timeout misses (it kills the wrapper; the submission goes on and may start the job later).
    script = f"sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    spec = JobSpec(name="realtime-cdc-demo", resubmit_command=("sh", "-c", script), resubmit_timeout_s=1)
    try:
        with pytest.raises(RecoveryError, match=r"did not finish in 1s"):
            run_resubmit_command(rest, spec, None, "0" * 32)
        started = [int(pid) for pid in pids.read_text().split()]
        assert len(started) == 2
        wait_until(lambda: [pid for pid in started if is_alive(pid)], lambda alive: not alive, timeout=5,
                   what="the command and the process it started to be gone")
    finally:
        for pid in [int(p) for p in pids.read_text().split()] if pids.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# g. After DUPLICATE_JOB, the job picked by name is the one this tool knows, not a copy that hides its failure.

JOB = "realtime-cdc-demo"
COPY_ID, NEXT_ID = "c0b1" * 8, "9e27" * 8


def replay(state_dir: Path, *jobs: tuple[str, str, str, int, int]) -> tuple[ClusterSpec, ClusterClients]:
    """A JobManager that knows these jobs of one name: (scenario recorded, job id, state, start, end). Each job
    answers as the scenario's recorded job did, under its own id and state."""
    overview, by_path = [], {}
    for scenario, jid, state, start, end in jobs:
        answers = copy.deepcopy(recorded_answers("1.20.3", scenario))
        answers["job"].update({"jid": jid, "state": state, "start-time": start, "end-time": end})
        overview.append({**answers["jobs_overview"]["jobs"][0], "jid": jid, "state": state, "start-time": start,
                         "end-time": end})
        rest, adapter = recorded_rest(CLUSTER.rest.url, answers, jid)
        by_path.update(adapter.by_path)
    adapter.by_path = {**by_path, "/jobs/overview": {"jobs": overview}}
    return dataclasses.replace(CLUSTER, state_dir=state_dir), ClusterClients(rest, None, "recorded REST answers only")


def test_a_copy_that_ran_beside_the_known_job_does_not_hide_its_failure(tmp_path):
    original = recorded_answers("1.20.3", "failed-heartbeat-timeout")["job"]
    started, ended = original["start-time"], original["end-time"]
    cluster, clients = replay(
        tmp_path,
        ("failed-heartbeat-timeout", original["jid"], "FAILED", started, ended),
        ("healthy", COPY_ID, "CANCELED", started + 5000, ended + 60_000),  # someone's copy, cancelled after
    )
    remember_job_ids(tmp_path, cluster.name, {JOB: original["jid"]})  # the id this tool saw running
    (view,) = observe_cluster(cluster, clients).jobs
    assert (view.info.id, view.info.state, view.info.failures) == (original["jid"], "FAILED", 4)
    codes = {f.code for f in diagnose(cluster, observe_cluster(cluster, clients)).findings}
    assert "JOB_FAILED" in codes and "JOB_CANCELED" not in codes


def test_of_two_live_copies_the_known_one_is_judged(tmp_path):
    original = recorded_answers("1.20.3", "failed-heartbeat-timeout")["job"]
    started = original["start-time"]
    cluster, clients = replay(
        tmp_path,
        ("failed-heartbeat-timeout", original["jid"], "RESTARTING", started, -1),  # failing over and over
        ("healthy", COPY_ID, "RUNNING", started + 5000, -1),  # a second copy, healthy
    )
    remember_job_ids(tmp_path, cluster.name, {JOB: original["jid"]})
    (view,) = observe_cluster(cluster, clients).jobs
    assert view.duplicate_ids == tuple(sorted((original["jid"], COPY_ID)))  # still DUPLICATE_JOB
    assert (view.info.id, view.info.state) == (original["jid"], "RESTARTING")


def test_a_job_started_after_the_known_one_ended_is_its_successor(tmp_path):
    original = recorded_answers("1.20.3", "failed-heartbeat-timeout")["job"]
    ended = original["end-time"]
    cluster, clients = replay(
        tmp_path,
        ("failed-heartbeat-timeout", original["jid"], "FAILED", original["start-time"], ended),
        ("failed-heartbeat-timeout", NEXT_ID, "FAILED", ended + 2000, ended + 9000),  # resubmitted, failed again
    )
    remember_job_ids(tmp_path, cluster.name, {JOB: original["jid"]})
    (view,) = observe_cluster(cluster, clients).jobs
    assert view.info.id == NEXT_ID  # the newest failure is the one to recover from, not the known one's


# b. A run parameter of an on-demand run cannot lower the inventory's approval policy.

DEPLOYMENT = "5b0c3a1e-2f6d-4c8e-9a7b-1d2e3f4a5b6c"


def test_a_deployments_run_cannot_say_yes_for_a_human():
    from flink_runbook.runbook.deciding.approval import approval_mode_problem

    for mode in ("yes", "prompt"):  # a custom run in the UI, the API, a trigger: no person at a terminal
        problem = approval_mode_problem(mode, DEPLOYMENT)
        assert problem.startswith(f"approval_mode {mode!r} is for the command line (recover --yes")
        assert f"a run of deployment {DEPLOYMENT} waits for a human" in problem and "Nothing was changed" in problem
    assert approval_mode_problem("pause", DEPLOYMENT) is None
    assert approval_mode_problem("refuse", DEPLOYMENT) is None  # stricter than asking: allowed
    assert approval_mode_problem("yes", None) is None  # the CLI's own process: recover --yes at a terminal
    assert approval_mode_problem("sometimes", None) == (
        "approval_mode must be one of pause, yes, prompt, refuse, not 'sometimes'"
    )


# e. A token in a URL's query is refused like user:pass@; no URL with a query leaves unredacted.

SECRET = "s3cr3t-t0ken"
LEAKY = f"http://ops:hunter2@127.0.0.1:8081/overview?token={SECRET}&x=1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('url: "http://127.0.0.1:18081"', f'url: "http://127.0.0.1:18081?token={SECRET}"'),
            r"clusters\[0\]\.rest\.url: must not carry credentials \(token= in http://127\.0\.0\.1\.\.\.\)",
        ),
        (
            ('url: "http://127.0.0.1:18081"', f'url: "http://127.0.0.1:18081/#access_token={SECRET}"'),
            r"clusters\[0\]\.rest\.url: must not carry credentials \(#access_token= in",
        ),
        (
            ('url: "http://127.0.0.1:18081"', 'url: "http://127.0.0.1:18081/?view=1"'),
            r"clusters\[0\]\.rest\.url: 'http://127\.0\.0\.1:18081/\?view=\*\*\*' must not have a query or fragment",
        ),
        (
            (
                "clusters:",
                f"notifications: {{escalation_webhook_url: 'https://hooks.example/x?api_key={SECRET}'}}\nclusters:",
            ),
            r"notifications\.escalation_webhook_url: must not carry credentials \(api_key= in https://hooks",
        ),
    ],
)
def test_a_token_in_a_urls_query_is_refused_like_user_and_password(tmp_path, change, message):
    with pytest.raises(InventoryError, match=message) as error:
        load_inventory(write(tmp_path, INVENTORY.replace(*change)))
    assert SECRET not in str(error.value)


def test_no_url_leaves_in_an_event_a_notice_or_a_log_with_its_credentials():
    leaky = dataclasses.replace(CLUSTER, rest=RestSettings(url=LEAKY))  # as if the inventory had let it in
    seen = dataclasses.replace(
        observed("1.20.3", "healthy"),
        rest_url=LEAKY,
        jobmanager=JobManagerView(
            reachable=False, error=f"GET failed: ConnectionError ({LEAKY})", error_kind=RestProblem.UNREACHABLE
        ),
    )
    diagnosis = diagnose(leaky, seen)
    decision = GuardDecision(GuardAction.RECOVER, f"unhealthy at {LEAKY}")
    events = [cluster_event(diagnosis, decision), *escalation_events(diagnosis, replace_action(decision))]
    fault = Fault(leaky.name, "rest", tuple(f for f in diagnosis.findings if f.code == "JOBMANAGER_UNREACHABLE"), 0.0)
    events.append(fault_event(fault, LEAKY, decision))
    notices = [
        unhealthy_notice(leaky.name, diagnosis, f"http://ui/runs/flow-run/1?token={SECRET}"),
        approval_needed_notice(leaky.name, diagnosis, plan_recovery(leaky, diagnosis), (f"asks {LEAKY}",), 60, None),
    ]
    said = json.dumps([[e.resource, e.payload] for e in events] + [[n.subject, n.body] for n in notices])
    assert SECRET not in said and "hunter2" not in said
    assert "token=***&x=***" in said and "http://***@127.0.0.1:8081" in said

    import flink_runbook.flows  # noqa: F401 - every flow's package: its import sets the run log's filter

    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(handler.format(record))
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        # Outside a run: only to this handler, not to Prefect's API handler (it would warn: no flow run).
        saved, logger.handlers, propagate, logger.propagate = logger.handlers, [handler], logger.propagate, False
        try:
            logger.error("REFUSED on %s: %s", leaky.name, f"the JobManager REST API at {LEAKY} does not answer")
        finally:
            logger.handlers, logger.propagate = saved, propagate
    assert len(logged) == 2 and not any(SECRET in line or "hunter2" in line for line in logged), logged
    assert all("?token=***&x=***" in line for line in logged)


def replace_action(decision: GuardDecision) -> GuardDecision:
    return dataclasses.replace(decision, action=GuardAction.ESCALATE)


# f. Lock and lineage files are opened with O_NOFOLLOW: a planted link is refused, not followed.


def test_a_link_planted_at_the_lock_is_refused_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock = lock_file(tmp_path / "state", "c1")
    lock.parent.mkdir(parents=True)
    lock.symlink_to(victim)
    refused = rf"{re.escape(str(lock))} is a symbolic link \(to {re.escape(str(victim))}\)"
    with pytest.raises(OSError, match=refused), cluster_lock(tmp_path / "state", "c1", None, timeout_s=1):
        pass
    assert victim.read_text() == "precious\n"  # not truncated, not overwritten with the holder
    assert is_held(tmp_path / "state", "c1")  # the monitor marks no run dead on the word of a link


@pytest.mark.parametrize("planted", ["lineage/c1.json", "lineage/c1.lock", "lineage/c1.partial"])
def test_a_link_planted_at_the_lineage_is_refused_not_followed(tmp_path, planted):
    victim = tmp_path / "victim.json"
    victim.write_text('{"realtime-cdc-demo": ["' + "a" * 32 + '"]}')  # someone else's lineage
    link = tmp_path / "state" / planted
    link.parent.mkdir(parents=True)
    link.symlink_to(victim)
    with pytest.raises(OSError, match=rf"{re.escape(str(link))} is a symbolic link"):
        remember_job_ids(tmp_path / "state", "c1", {"realtime-cdc-demo": "b" * 32})
    assert victim.read_text() == '{"realtime-cdc-demo": ["' + "a" * 32 + '"]}'
    if planted.endswith(".json"):
        with pytest.raises(OSError, match="is a symbolic link"):
            read_lineage(tmp_path / "state", "c1")  # not read as the job's own ids
