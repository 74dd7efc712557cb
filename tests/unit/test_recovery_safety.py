"""Issue 12's safety cases that are pure logic: each test fails on the code before it (see the closing note)."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from flink_runbook.containers.states import ContainerState
from flink_runbook.flink.answers import CheckpointInfo, CheckpointStats, JobState, TaskManagerInfo
from flink_runbook.flink.rest import ERROR_TEXT_CHARS, FlinkRestClient, FlinkRestError
from flink_runbook.inventory import CheckpointDir, InventoryError, JobSpec, RestAuth, RestSettings, load_inventory
from flink_runbook.runbook.deciding.guard import RecoveryRun, dead_runs
from flink_runbook.runbook.deciding.plan import plan_recovery, recovery_job_id
from flink_runbook.runbook.deciding.restore_point import choose_restore_point, list_retained_checkpoints
from flink_runbook.runbook.keeping.host_lock import RecoveryLockTimeout, cluster_lock, is_held, lock_file, read_holder
from flink_runbook.runbook.keeping.lineage import read_lineage, remember_job_ids
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.observe import JobView

from .test_findings import CLUSTER, observed
from .test_recovery_plan import LONG_AGO, jm_container, retain, with_containers

JOB = "realtime-cdc-demo"


def tm(name: str, *, ip: str, hostname: str | None = None, state: str = "running") -> ContainerState:
    return ContainerState(
        role="taskmanager", name=name, service="taskmanager", state=state, container_id=f"{name}-0123456789abcdef",
        ip_addresses=(ip,), hostname=hostname, network_aliases=("taskmanager",), started_at=LONG_AGO,
    )


def registered(tm_id: str, rpc_host: str) -> TaskManagerInfo:
    return TaskManagerInfo(tm_id, 100, 2, 1, f"pekko.tcp://flink@{rpc_host}:6122/user/rpc/taskmanager_0")


def running_job_and_a_missing_one(*containers: ContainerState, taskmanagers: tuple[TaskManagerInfo, ...]):
    """A running job, and a second configured job the JobManager does not know (policy fail): an error finding
    that has nothing to do with the TaskManagers."""
    cluster = dataclasses.replace(CLUSTER, jobs=(*CLUSTER.jobs, JobSpec(name="other-job")))
    seen = with_containers(observed("1.20.3", "healthy"), jm_container(), *containers)
    seen = dataclasses.replace(seen, taskmanagers=taskmanagers, jobs=(*seen.jobs, JobView("other-job", None)))
    return cluster, plan_recovery(cluster, diagnose(cluster, seen), {})


# -- case 1: TaskManager attribution ------------------------------------------------------------------


def test_a_taskmanager_registered_by_hostname_is_attributed_and_never_restarted():
    # taskmanager.host: taskmanager-a (Compose hostname): id and RPC path carry the hostname, not the IP.
    _, plan = running_job_and_a_missing_one(
        tm("tm-a", ip="172.30.0.3", hostname="taskmanager-a"),
        taskmanagers=(registered("taskmanager-a:6122-abc123", "taskmanager-a"),),
    )
    assert not plan.of("restart_taskmanagers") and not plan.of("wait_for_taskmanagers")


def test_a_taskmanager_with_a_resource_id_is_attributed_by_its_rpc_path():
    _, plan = running_job_and_a_missing_one(
        tm("tm-a", ip="172.30.0.3"), taskmanagers=(registered("my-resource-id", "172.30.0.3"),)
    )
    assert not plan.of("restart_taskmanagers")


def test_only_the_container_without_a_registered_taskmanager_is_restarted():
    _, plan = running_job_and_a_missing_one(
        tm("tm-a", ip="172.30.0.3", hostname="tm-a"),
        tm("tm-b", ip="172.30.0.4", hostname="tm-b"),
        taskmanagers=(registered("tm-a:6122-abc", "tm-a"),),
    )
    (restart,) = plan.of("restart_taskmanagers")
    assert restart.containers == ("tm-b",)


def test_an_unattributable_taskmanager_makes_the_plan_refuse_to_restart_running_containers():
    _, plan = running_job_and_a_missing_one(
        tm("tm-a", ip="172.30.0.3", hostname="tm-a"),
        taskmanagers=(registered("elsewhere:6122-abc", "10.9.9.9"),),
    )
    assert not plan.of("restart_taskmanagers")
    assert any("elsewhere:6122-abc" in r and "not restarting a running container" in r for r in plan.refusals)


# -- case 2: restore only from the job's own lineage ---------------------------------------------------


def shared(tmp_path: Path, exclusive: bool = False) -> CheckpointDir:
    return CheckpointDir(host=tmp_path, container="/data/checkpoints", exclusive=exclusive)


def test_a_shared_directory_with_an_unknown_lineage_is_ambiguous_and_refused(tmp_path):
    retain(tmp_path, "a" * 32, 15, 200.0)  # the other job's, newest
    retain(tmp_path, "b" * 32, 9, 100.0)
    choice = choose_restore_point(JOB, shared(tmp_path), None, None, (), list_retained_checkpoints(tmp_path))
    assert choice.point is None and "2 job ids" in choice.refusal


def test_the_lineage_picks_the_jobs_own_checkpoint_in_a_shared_directory(tmp_path):
    retain(tmp_path, "a" * 32, 15, 200.0)
    retain(tmp_path, "b" * 32, 9, 100.0)
    choice = choose_restore_point(JOB, shared(tmp_path), None, None, ("b" * 32,), list_retained_checkpoints(tmp_path))
    assert choice.point.path == f"file:/data/checkpoints/{'b' * 32}/chk-9"
    exclusive = choose_restore_point(JOB, shared(tmp_path, True), None, None, (), list_retained_checkpoints(tmp_path))
    assert exclusive.point.path == f"file:/data/checkpoints/{'a' * 32}/chk-15"


def test_a_checkpoint_gone_from_disk_is_passed_over_for_the_next_older_with_a_warning(tmp_path):
    job_id = "c" * 32
    retain(tmp_path, job_id, 14, 100.0)
    retain(tmp_path, job_id, 15, 200.0, metadata=b"")  # named by the REST API, but its _metadata is empty
    history = CheckpointStats(latest_completed=CheckpointInfo(15, f"file:/data/checkpoints/{job_id}/chk-15", 1))
    choice = choose_restore_point(JOB, shared(tmp_path), history, job_id, (), list_retained_checkpoints(tmp_path))
    assert choice.point.checkpoint_id == 14
    assert any("gone or empty" in n for n in choice.notes) and any("twice" in n for n in choice.notes)


def test_a_checkpoint_outside_the_checkpoint_directory_is_never_used(tmp_path):
    history = CheckpointStats(latest_completed=CheckpointInfo(15, "file:/elsewhere/x/chk-15", 1))
    choice = choose_restore_point(JOB, shared(tmp_path), history, "d" * 32, (), [])
    assert choice.point is None and "outside the configured checkpoint directory" in choice.refusal


def test_lineage_is_remembered_per_cluster_and_job(tmp_path):
    remember_job_ids(tmp_path, "c1", {JOB: "1" * 32})
    remember_job_ids(tmp_path, "c1", {JOB: "2" * 32, "other": "3" * 32})
    remember_job_ids(tmp_path, "c1", {JOB: "2" * 32})
    assert read_lineage(tmp_path, "c1") == {JOB: ("1" * 32, "2" * 32), "other": ("3" * 32,)}
    assert read_lineage(tmp_path, "c2") == {}


# -- case 3: no_checkpoint_policy applies to the resubmit command ----------------------------------------


def test_fail_policy_refuses_a_fresh_start_through_the_resubmit_command_too():
    cluster = dataclasses.replace(
        CLUSTER, jobs=(JobSpec(name=JOB, resubmit_command=("./restart.sh", "{restore_path}")),)
    )
    seen = dataclasses.replace(observed("1.20.3", "failed-heartbeat-timeout"), jobs=(JobView(JOB, None),))
    plan = plan_recovery(cluster, diagnose(cluster, seen), {JOB: []})
    assert not plan.resubmits and "no_checkpoint_policy is 'fail'" in plan.refusals[0]


# -- case 4: idempotent submission ------------------------------------------------------------------


def test_the_recovery_job_id_is_the_same_for_one_failure_and_another_for_the_next():
    first = recovery_job_id("c", JOB, "e" * 32)
    assert first == recovery_job_id("c", JOB, "e" * 32) and len(first) == 32 and int(first, 16) >= 0
    assert first != recovery_job_id("c", JOB, "f" * 32) != recovery_job_id("d", JOB, "e" * 32)


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from flink_runbook.runbook.keeping.host_lock import cluster_lock
with cluster_lock(Path(sys.argv[1]), "c1", "run-1", timeout_s=5):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_the_host_lock_excludes_a_second_holder_and_a_killed_holder_frees_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert is_held(tmp_path, "c1")
        with pytest.raises(RecoveryLockTimeout, match="flow run run-1"), cluster_lock(tmp_path, "c1", "run-2", 1):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert not is_held(tmp_path, "c1")
        # case 9: killed while holding it, it never said it let go: its RUNNING run is dead.
        last = read_holder(lock_file(tmp_path, "c1"))
        assert last.flow_run_id == "run-1" and not last.released
        runs = [RecoveryRun("r", "RUNNING", 0, id="run-1"), RecoveryRun("q", "RUNNING", 0, id="run-0")]
        assert dead_runs(runs, last, False) == {"run-1"}
        with cluster_lock(tmp_path, "c1", "run-2", 1) as holding:
            assert dead_runs(runs, holding, is_held(tmp_path, "c1")) == set()
        assert read_holder(lock_file(tmp_path, "c1")).released  # let go cleanly: not dead
    finally:
        holder.kill()


# -- case 5: a human's cancel ------------------------------------------------------------------------


def test_a_cancelled_job_is_reported_and_left_unless_its_entry_says_resubmit():
    base = observed("1.20.3", "failed-heartbeat-timeout")
    (view,) = base.jobs
    seen = dataclasses.replace(base, jobs=(JobView(JOB, dataclasses.replace(view.info, state=JobState.CANCELED)),))
    diagnosis = diagnose(CLUSTER, seen)
    assert {f.code: f.severity for f in diagnosis.findings}["JOB_CANCELED"] == "info"
    assert not plan_recovery(CLUSTER, diagnosis, {}).resubmits
    resubmitting = dataclasses.replace(CLUSTER, jobs=(dataclasses.replace(CLUSTER.jobs[0], on_canceled="resubmit"),))
    assert plan_recovery(resubmitting, diagnose(resubmitting, seen), {}).resubmits


# -- case 6: paused is not crashed --------------------------------------------------------------------


def test_paused_containers_are_unpaused_and_a_jobmanager_is_never_restarted():
    seen = with_containers(
        observed("1.20.3", "failed-heartbeat-timeout"), jm_container(), tm("tm", ip="1.2.3.4", state="paused")
    )
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, seen))
    assert [a.action for a in plan.actions] == ["unpause_containers"] and plan.observe_again
    frozen_jm = with_containers(observed("1.20.3", "healthy"), jm_container("paused"), tm("tm", ip="1.2.3.4"))
    plan = plan_recovery(CLUSTER, diagnose(CLUSTER, frozen_jm))
    assert [a.action for a in plan.actions] == ["start_jobmanager"]  # docker unpause / start, never restart


# -- case 7: a recovery of every cluster is asked for explicitly ----------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


CLUSTERS = """
clusters:
  - name: a
    rest: {url: "http://127.0.0.1:8081"}
    containers: {compose_project: a}
  - name: b
    rest: {url: "http://127.0.0.1:8082"}
    containers: {compose_project: b}
"""


def test_no_cluster_named_is_no_recovery_and_all_needs_asking(tmp_path):
    inventory = load_inventory(write(tmp_path, CLUSTERS))
    with pytest.raises(InventoryError, match="no cluster named to recover"):
        inventory.to_act_on(None)
    with pytest.raises(InventoryError, match="no cluster named to recover"):
        inventory.to_act_on("")  # what an event without prefect.resource.name renders
    assert [c.name for c in inventory.to_act_on("b")] == ["b"]
    assert [c.name for c in inventory.to_act_on(None, all_clusters=True)] == ["a", "b"]


def test_the_trigger_makes_guarded_runs_of_one_named_cluster(tmp_path):
    from flink_runbook.deployments.definitions import recover_trigger

    parameters = recover_trigger(tmp_path / "inventory.yaml").parameters
    assert parameters["guarded"] is True and "all_clusters" not in parameters


# -- case 10: two jobs of one name --------------------------------------------------------------------


def test_two_live_jobs_of_one_name_are_critical_and_never_acted_on():
    base = observed("1.20.3", "failed-heartbeat-timeout")
    (view,) = base.jobs
    seen = dataclasses.replace(base, jobs=(dataclasses.replace(view, duplicate_ids=("1" * 32, "2" * 32)),))
    diagnosis = diagnose(CLUSTER, seen)
    duplicate = next(f for f in diagnosis.findings if f.code == "DUPLICATE_JOB")
    assert duplicate.severity == "critical" and "1" * 32 in duplicate.evidence and "2" * 32 in duplicate.evidence
    plan = plan_recovery(CLUSTER, diagnosis, {})
    assert not plan.resubmits and any("not acted on until a human" in r for r in plan.refusals)


# -- case 12: hostile REST servers ---------------------------------------------------------------------


class _Hostile(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for _ in range(30):  # a byte every 0.2 s: no read ever times out
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        elif self.path == "/huge":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"[" + b"0," * 1_000_000 + b"0]")
        else:
            body = json.dumps({"errors": ["x" * 500_000]}).encode()
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hostile_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_trickling_server_is_cut_at_the_calls_deadline(hostile_url):
    client = FlinkRestClient(hostile_url, connect_timeout=1, read_timeout=1, read_retries=0, call_deadline=1.5)
    begun = time.monotonic()
    with pytest.raises(FlinkRestError, match=r"did not finish within 1\.5s"):
        client.get("/trickle")
    elapsed = time.monotonic() - begun
    assert elapsed <= 1.5 + 1.0, f"the call took {elapsed:.1f}s against its 1.5s deadline"  # a bound, not a benchmark


def test_an_answer_over_the_size_cap_is_not_read(hostile_url):
    client = FlinkRestClient(hostile_url, read_retries=0, max_answer_bytes=100_000)
    with pytest.raises(FlinkRestError, match="more than 100000 bytes"):
        client.get("/huge")


def test_error_text_is_capped(hostile_url):
    with pytest.raises(FlinkRestError) as caught:
        FlinkRestClient(hostile_url, read_retries=0).get("/error")
    assert len(str(caught.value)) <= ERROR_TEXT_CHARS and len(caught.value.body) <= ERROR_TEXT_CHARS


def test_run_jar_passes_the_job_id(hostile_url):
    sent = []

    class Capture(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            sent.append(json.loads(request.body))
            response = requests.Response()
            response.status_code, response.raw = 200, __import__("io").BytesIO(b'{"jobid": "' + b"9" * 32 + b'"}')
            return response

        def close(self):
            pass

    session = requests.Session()
    session.mount(hostile_url, Capture())
    client = FlinkRestClient(hostile_url, session=session)
    assert client.run_jar("x.jar", entry_class="E", program_args=[], job_id="9" * 32) == "9" * 32
    assert sent[0]["jobId"] == "9" * 32


# -- cases 13 and 14: inventory values and secrets -----------------------------------------------------


ONE = """
clusters:
  - name: a
    rest: {{url: "{url}"{rest}}}
    containers: {{compose_project: a}}
{more}
"""


@pytest.mark.parametrize(
    ("more", "rest", "url", "expected"),
    [
        ("    recovery: {verify_timeout_s: .nan}", "", "http://h:8081", "recovery.verify_timeout_s: must be a finite"),
        ("    recovery: {verify_timeout_s: .inf}", "", "http://h:8081", "recovery.verify_timeout_s: must be a finite"),
        (
            "    recovery: {verify_timeout_s: 1000000000000}",
            "",
            "http://h:8081",
            "recovery.verify_timeout_s: must be at most",
        ),
        ("    expected_taskmanagers: 10000000", "", "http://h:8081", "expected_taskmanagers: must be at most"),
        ("", ", tls: {client_key: k.pem}", "http://h:8081", "rest.tls.client_key: client_key needs client_cert"),
        ("", "", "http://admin:hunter2@h:8081", "rest.url: must not carry credentials"),
    ],
)
def test_bad_inventory_values_name_the_key(tmp_path, more, rest, url, expected):
    path = write(tmp_path, ONE.format(url=url, rest=rest, more=more))
    with pytest.raises(InventoryError, match=expected.replace(".", r"\.")) as caught:
        load_inventory(path)
    assert "hunter2" not in str(caught.value)


def test_a_webhook_url_with_credentials_is_refused_and_a_good_one_is_not_in_the_repr(tmp_path):
    bad = CLUSTERS + "notifications: {escalation_webhook_url: 'https://u:secret@hooks.example/x'}\n"
    with pytest.raises(InventoryError, match="escalation_webhook_url: must not carry credentials"):
        load_inventory(write(tmp_path, bad))
    good = CLUSTERS + "notifications: {escalation_webhook_url: 'https://hooks.example/T0K3N'}\n"
    assert "T0K3N" not in repr(load_inventory(write(tmp_path, good)))


def test_auth_over_plain_http_is_a_warning():
    cluster = dataclasses.replace(
        CLUSTER, rest=RestSettings(url="http://127.0.0.1:8081", auth=RestAuth("bearer", token_env="T"))
    )
    findings = {f.code: f.severity for f in diagnose(cluster, observed("1.20.3", "healthy")).findings}
    assert findings["REST_AUTH_OVER_HTTP"] == "warning"


def test_bad_inventory_exits_2_without_a_traceback(tmp_path):
    path = write(tmp_path, ONE.format(url="http://h:8081", rest="", more="    recovery: {verify_timeout_s: .nan}"))
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never reached: the input is refused first
    done = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "recover", "--config", str(path), "--cluster", "a"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 2 and "verify_timeout_s: must be a finite number" in done.stderr
    assert "Traceback" not in done.stderr


# -- case 8: a duration as Flink writes it, and one that is not ----------------------------------------


@pytest.mark.parametrize(("value", "timeout_ms"), [("3 min", 180_000), ("PT50S", 50_000), ("50000", 50_000)])
def test_heartbeat_durations_are_read_as_flink_reads_them(value, timeout_ms):
    from .recorded import recorded_answers
    from .test_observe_bad_answers import observe

    answers = recorded_answers("1.20.3", "healthy")
    answers["jobmanager_config"] = [
        {"key": k["key"], "value": value if k["key"] == "heartbeat.timeout" else k["value"]}
        for k in answers["jobmanager_config"]
    ]
    seen, _ = observe("1.20.3", "healthy", answers)
    assert seen.jobmanager.reachable and seen.jobmanager.heartbeat_timeout_ms == timeout_ms


def test_an_unreadable_duration_is_a_finding_of_that_cluster_not_a_crash():
    from .recorded import recorded_answers
    from .test_observe_bad_answers import observe

    answers = recorded_answers("1.20.3", "healthy")
    answers["jobmanager_config"] = [
        {"key": k["key"], "value": "soon" if k["key"] == "heartbeat.timeout" else k["value"]}
        for k in answers["jobmanager_config"]
    ]
    seen, _ = observe("1.20.3", "healthy", answers)
    (finding,) = [f for f in diagnose(CLUSTER, seen).findings if f.code == "JOBMANAGER_REST_INVALID"]
    assert "heartbeat.timeout" in finding.evidence and "soon" in finding.evidence
