"""Safety II, case 9: a started JobManager with high availability restores its own jobs; none is resubmitted.

The JobManager is replayed from the answers recorded of a real one with ZooKeeper HA right after a
`docker start` (tests/fixtures/record_ha_rest.py: 503 during the leader election, then the job listed
under its old id, INITIALIZING, then RUNNING), with one moment constructed between them: the REST API
answering while the job is not listed yet. ZooKeeper did not show that moment here (the job was listed
at the first 200), but nothing in Flink's REST contract rules it out, and it is the one where a
resubmission makes a second copy under a new id.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
import requests.adapters
import yaml

from flink_runbook.demo.image import ZOOKEEPER_IMAGE
from flink_runbook.demo.versions import STACK_DIR
from flink_runbook.flink.answers import parse_cluster_config, parse_jobs_overview
from flink_runbook.flink.rest import FlinkRestClient
from flink_runbook.inventory import (
    CheckpointDir,
    ClusterSpec,
    ContainerSelector,
    InventoryError,
    JobSpec,
    RecoverySettings,
    RestSettings,
    load_inventory,
)
from flink_runbook.runbook.acting.execute import start_jobmanager
from flink_runbook.runbook.clients import ClusterClients
from flink_runbook.runbook.deciding.plan import Action, PlannedAction, RecoveryPlan, plan_recovery
from flink_runbook.runbook.deciding.restore_point import list_retained_checkpoints
from flink_runbook.runbook.keeping.lineage import read_lineage, remember_job_ids
from flink_runbook.runbook.model import Progress, StepStatus
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.high_availability import (
    ExpectedJob,
    ha_restore,
    high_availability_type,
    jobs_expected_back,
)
from flink_runbook.runbook.observing.observe import ClusterObservation, ContainersView, check_jobmanager, now_ms

from .recorded import ENDPOINTS, HA_VERSIONS, RECORDED, recorded_answers
from .test_recovery_plan import jm_container, retain, tm_container

URL = "http://jobmanager.test:8081"
JOB = "realtime-cdc-demo"


def recorded_moment(version: str, scenario: str) -> dict[str, tuple[int, Any]]:
    """One recorded moment of a started HA JobManager: endpoint name -> (HTTP status, answer)."""
    folder = RECORDED / f"flink-{version}" / scenario
    statuses = dict(line.split() for line in (folder / "statuses.txt").read_text().splitlines())
    return {name: (int(statuses[name]), body) for name, body in recorded_answers(version, scenario).items()}


def restored_job_id(version: str) -> str:
    (job,) = recorded_answers(version, "ha-started-job-running")["jobs_overview"]["jobs"]
    return job["jid"]


def before_the_job_is_listed(version: str) -> dict[str, tuple[int, Any]]:
    """Constructed: the REST API answering as recorded, the job not listed yet (and so unknown by id)."""
    moment = recorded_moment(version, "ha-started-rest-answers")
    moment["jobs_overview"] = (200, {"jobs": []})
    for name in ("job", "job_exceptions", "job_checkpoints", "job_checkpoints_config"):
        moment.pop(name, None)
    return moment


class RestartedHaJobManager(requests.adapters.BaseAdapter):
    """A JobManager container that answers nothing until `docker start`, then each moment in turn for its
    seconds, then the last one for good; 404 for what a moment does not hold, as Flink answers."""

    def __init__(self, job_id: str, moments: list[tuple[float, dict[str, tuple[int, Any]]]]) -> None:
        super().__init__()
        self.job_id = job_id
        self.moments = moments
        self.started_at: float | None = None

    def start(self) -> None:
        self.started_at = time.monotonic()

    def now(self) -> dict[str, tuple[int, Any]]:
        elapsed = time.monotonic() - (self.started_at or 0)
        for seconds, moment in self.moments:
            if elapsed < seconds:
                return moment
            elapsed -= seconds
        return self.moments[-1][1]

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.started_at is None:
            raise requests.ConnectionError(f"connection refused: {request.url}")
        path = urlparse(request.url).path
        by_path = {ENDPOINTS[name].format(jid=self.job_id): answer for name, answer in self.now().items()}
        status, body = by_path.get(path, (404, {"errors": [f"Not found: {path}"]}))
        response = requests.Response()
        response.url, response.request, response.status_code = request.url, request, status
        response.raw = io.BytesIO(json.dumps(body).encode())
        return response

    def close(self) -> None:
        pass


class StoppedJobManagerContainer:
    """The Docker side of `docker start jm`: what execute.start_jobmanager asks of the engine."""

    def __init__(self, jobmanager: RestartedHaJobManager) -> None:
        self.jobmanager = jobmanager
        self.status = "exited"

    def start(self) -> None:
        self.status = "running"
        self.jobmanager.start()


class Engine:
    def __init__(self, container: StoppedJobManagerContainer) -> None:
        self.containers = self
        self.container = container

    def get(self, name: str) -> StoppedJobManagerContainer:
        assert name == "jm", name
        return self.container


def ha_cluster(tmp_path: Path, **recovery: float) -> ClusterSpec:
    return ClusterSpec(
        name="realtime-pipeline",
        rest=RestSettings(url=URL),
        containers=ContainerSelector(compose_project="realtime-pipeline"),
        jobs=(JobSpec(name=JOB, checkpoint_dir=CheckpointDir(host=tmp_path / "checkpoints", container="/data")),),
        recovery=RecoverySettings(**recovery),
        state_dir=tmp_path / "state",
    )


def start_stopped_jobmanager(
    cluster: ClusterSpec, jobmanager: RestartedHaJobManager
) -> tuple[Progress, FlinkRestClient, float]:
    """execute.start_jobmanager on the stopped container, as the recovery's first plan has it."""
    session = requests.Session()
    session.mount(URL, jobmanager)
    rest = FlinkRestClient(URL, session=session, read_retries=0)
    clients = ClusterClients(rest, Engine(StoppedJobManagerContainer(jobmanager)))  # type: ignore[arg-type]
    start = PlannedAction(Action.START_JOBMANAGER, "jm", "jm exited", containers=("jm",), starts_stopped=("jm",))
    plan = RecoveryPlan(cluster.name, actions=(start,), observe_again=True)
    began = time.monotonic()
    progress = start_jobmanager(cluster, plan, clients, Progress())
    return progress, rest, time.monotonic() - began


def plan_after(cluster: ClusterSpec, rest: FlinkRestClient) -> tuple[ClusterObservation, RecoveryPlan]:
    """The flow's second look (observe_cluster's REST part, the containers running) and the plan from it, with
    the checkpoints on disk and the lineage, as the flow's plan_cluster_recovery has them."""
    jobmanager, taskmanagers, jobs = check_jobmanager(cluster, rest)
    seen = ClusterObservation(
        cluster=cluster.name,
        rest_url=URL,
        observed_at_ms=now_ms(),
        jobmanager=jobmanager,
        taskmanagers=tuple(taskmanagers),
        jobs=tuple(jobs),
        containers=ContainersView(containers=(jm_container(), tm_container("running"))),
    )
    retained = {job.name: list_retained_checkpoints(job.checkpoint_dir.host) for job in cluster.jobs}
    lineage = read_lineage(cluster.state_dir, cluster.name)
    return seen, plan_recovery(cluster, diagnose(cluster, seen), retained, lineage)


@pytest.mark.parametrize("version", HA_VERSIONS)
def test_a_started_ha_jobmanager_restores_its_job_and_nothing_is_resubmitted(version, tmp_path):
    job_id = restored_job_id(version)
    cluster = ha_cluster(tmp_path)
    remember_job_ids(cluster.state_dir, cluster.name, {JOB: job_id})  # what the monitor saw it run as
    retain(cluster.jobs[0].checkpoint_dir.host, job_id, 7, time.time() - 60)  # what a resubmission would use
    jobmanager = RestartedHaJobManager(
        job_id,
        [
            (0.2, recorded_moment(version, "ha-started-not-leader-yet")),  # 503: the leader election
            (1.0, before_the_job_is_listed(version)),  # REST answers, the job not listed yet
            (0.8, recorded_moment(version, "ha-started-rest-answers")),  # listed under its old id, INITIALIZING
            (0, recorded_moment(version, "ha-started-job-running")),
        ],
    )
    progress, rest, took = start_stopped_jobmanager(cluster, jobmanager)

    (step,) = progress.steps
    assert step.status == StepStatus.DONE, step.detail
    seen, plan = plan_after(cluster, rest)
    # Today's code planned the moment REST answered: JOB_MISSING, resubmitted from chk-7 under a new id.
    assert plan.resubmits == [], f"{step.detail}; planned: {plan.resubmits}"
    assert plan.refusals == ()
    (view,) = seen.jobs
    assert seen.jobmanager.reachable, seen.jobmanager.error
    assert view.info is not None and view.info.id == job_id  # under its old id: HA's copy, the one copy
    assert f"{JOB} listed as {job_id} (its old id)" in step.detail
    assert "high-availability.type: zookeeper" in step.detail
    assert took < 10


@pytest.mark.parametrize("version", HA_VERSIONS)
def test_a_restored_job_still_initializing_is_waited_for_not_read_as_a_broken_jobmanager(version, tmp_path):
    """Only recorded moments: at the first 200 the job is listed INITIALIZING and GET /jobs/:id/checkpoints
    answers 500 ("not available while the JobManager is initializing"), about 2.5 s before it runs."""
    job_id = restored_job_id(version)
    cluster = ha_cluster(tmp_path)
    retain(cluster.jobs[0].checkpoint_dir.host, job_id, 7, time.time() - 60)
    jobmanager = RestartedHaJobManager(
        job_id,
        [
            (0.2, recorded_moment(version, "ha-started-not-leader-yet")),
            (1.2, recorded_moment(version, "ha-started-rest-answers")),
            (0, recorded_moment(version, "ha-started-job-running")),
        ],
    )
    progress, rest, _ = start_stopped_jobmanager(cluster, jobmanager)
    seen, plan = plan_after(cluster, rest)
    # Today's code looked again at once: the 500 made the JobManager "not Flink's" and the plan refused.
    assert seen.jobmanager.reachable, seen.jobmanager.error
    assert plan.refusals == () and plan.resubmits == [], plan
    assert [view.info.id for view in seen.jobs if view.info] == [job_id]
    # No monitor tick remembered its id here: waited for by name.
    assert f"{JOB} listed as {job_id} (no earlier id known), RUNNING" in progress.steps[0].detail


def test_without_high_availability_a_started_jobmanager_is_not_waited_for(tmp_path):
    """A JobManager without HA forgets its jobs: the plan is made at once (JOB_MISSING), no time is lost."""
    version = "1.20.3"
    healthy = {name: (200, body) for name, body in recorded_answers(version, "healthy").items()}
    job_id = healthy["jobs_overview"][1]["jobs"][0]["jid"]
    forgotten = {**healthy, "jobs_overview": (200, {"jobs": []})}
    cluster = ha_cluster(tmp_path, ha_restore_timeout_s=30)
    progress, rest, took = start_stopped_jobmanager(cluster, RestartedHaJobManager(job_id, [(0, forgotten)]))
    (step,) = progress.steps
    assert "no high availability (high-availability.type not set (NONE))" in step.detail
    assert took < 5
    seen, _ = plan_after(cluster, rest)
    assert [view.info for view in seen.jobs] == [None]


@pytest.mark.parametrize("version", HA_VERSIONS)
def test_the_wait_for_ha_is_bounded_and_says_what_did_not_come_back(version, tmp_path):
    cluster = ha_cluster(tmp_path, ha_restore_timeout_s=1)
    jobmanager = RestartedHaJobManager(restored_job_id(version), [(0, before_the_job_is_listed(version))])
    progress, _, took = start_stopped_jobmanager(cluster, jobmanager)
    (step,) = progress.steps
    assert step.status == StepStatus.DONE  # not coming back is for the next plan to see
    assert 1 <= took < 5
    assert f"{JOB} not listed; not restored within 1s (recovery.ha_restore_timeout_s)" in step.detail


@pytest.mark.parametrize("version", HA_VERSIONS)
def test_the_recorded_ha_config_reads_as_zookeeper_and_the_demo_config_as_none(version):
    ha = parse_cluster_config(recorded_answers(version, "ha-started-rest-answers")["jobmanager_config"])
    assert high_availability_type(ha) == "zookeeper"
    demo = parse_cluster_config(recorded_answers(version, "healthy")["jobmanager_config"])
    assert high_availability_type(demo) is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, None),
        ({"high-availability.type": "NONE"}, None),
        ({"high-availability.type": "kubernetes"}, "kubernetes"),
        ({"high-availability": "zookeeper"}, "zookeeper"),  # the older names, still read by Flink
        ({"recovery.mode": "standalone"}, None),  # the oldest name of NONE
        ({"high-availability.type": "com.example.MyHaServicesFactory"}, "com.example.MyHaServicesFactory"),
        ({"high-availability.type": "none", "high-availability": "zookeeper"}, None),  # the key wins
    ],
)
def test_high_availability_is_read_as_flink_reads_it(config, expected):
    assert high_availability_type(config) == expected


def test_a_job_is_back_once_listed_past_initializing_under_its_old_id():
    expected = jobs_expected_back([JOB, "other"], {JOB: ("old-1", "old-2")})
    assert expected == (ExpectedJob(JOB, "old-2"), ExpectedJob("other", None))
    initializing = parse_jobs_overview(recorded_answers("2.2.0", "ha-started-rest-answers")["jobs_overview"])
    restore = ha_restore([ExpectedJob(JOB, initializing[0].id)], initializing)
    assert initializing[0].state == "INITIALIZING" and not restore.complete  # its checkpoints answer 500 yet
    running = parse_jobs_overview(recorded_answers("2.2.0", "ha-started-job-running")["jobs_overview"])
    assert ha_restore([ExpectedJob(JOB, running[0].id)], running).complete
    missing = ha_restore(expected, running)
    assert not missing.complete and missing.missing == (ExpectedJob("other", None),)
    assert "(not its last known id old-2)" in missing.describe()


def test_the_ha_restore_timeout_is_an_inventory_key_of_recovery(tmp_path):
    inventory = tmp_path / "inventory.yaml"
    cluster = "clusters:\n  - name: a\n    rest: {url: 'http://h:8081'}\n    containers: {compose_project: a}\n"
    inventory.write_text(cluster)
    assert load_inventory(inventory).clusters[0].recovery.ha_restore_timeout_s == 60
    inventory.write_text(cluster + "    recovery: {ha_restore_timeout_s: 0}\n")  # 0: do not wait
    assert load_inventory(inventory).clusters[0].recovery.ha_restore_timeout_s == 0
    inventory.write_text(cluster + "    recovery: {ha_restore_timeout_s: -5}\n")
    with pytest.raises(InventoryError, match=r"inventory\.yaml: clusters\[0\]\.recovery\.ha_restore_timeout_s: .*-5"):
        load_inventory(inventory)


def test_the_ha_stack_runs_the_zookeeper_image_the_demo_builds_and_both_roles_use_it():
    compose = yaml.safe_load((STACK_DIR / "high-availability.yml").read_text())
    assert compose["services"]["zookeeper"]["image"] == ZOOKEEPER_IMAGE
    for role in ("jobmanager", "taskmanager"):
        properties = compose["services"][role]["environment"]["FLINK_PROPERTIES"]
        assert "high-availability.type: zookeeper" in properties, role
        assert "high-availability.zookeeper.quorum: zookeeper:2181" in properties, role
        assert "high-availability.storageDir: file:///data/ha" in properties, role  # the shared volume
