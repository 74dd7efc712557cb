"""What differs between the supported Flink releases (1.18 to 2.3), on answers and catalogues recorded from each."""

from __future__ import annotations

import io
import json

import pytest
import requests
import requests.adapters

from flink_runbook.audit.cluster import AuditInputs, audit_cluster
from flink_runbook.audit.config import audit_flink_config
from flink_runbook.demo.versions import STACK_DIR, SUPPORTED_FLINK_VERSIONS
from flink_runbook.flink.answers import JobState
from flink_runbook.flink.config_file import read_flink_config
from flink_runbook.flink.options import catalogue_note, catalogue_release, option_catalogue, recorded_releases
from flink_runbook.flink.rest import FlinkRestClient
from flink_runbook.runbook.observing.diagnosis import diagnose

from .recorded import RECORDED, RESTARTING_VERSIONS, VERSIONS, answer, recorded_job
from .test_findings import CLUSTER, observed

JAR_RUN_VERSIONS = [v for v in VERSIONS if (RECORDED / f"flink-{v}" / "jar-run" / "jar_run.json").exists()]


def test_every_supported_release_is_recorded_from_a_real_cluster_and_its_own_jars():
    assert set(SUPPORTED_FLINK_VERSIONS.values()) <= set(VERSIONS)
    assert set(SUPPORTED_FLINK_VERSIONS.values()) <= set(recorded_releases())


class _Answer(requests.adapters.BaseAdapter):
    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code, response.raw = 200, io.BytesIO(self.body)
        return response

    def close(self):
        pass


@pytest.mark.parametrize("version", JAR_RUN_VERSIONS)
def test_run_jar_keeps_the_job_id_of_every_releases_answer(version):
    recorded = answer(version, "jar-run", "jar_run")
    session = requests.Session()
    session.mount("http://flink", _Answer(json.dumps(recorded).encode()))
    client = FlinkRestClient("http://flink", session=session)
    assert client.run_jar("demo.jar", entry_class="E", program_args=[]) == recorded["jobid"]


def test_flink_2_3_answers_a_jar_run_with_an_application_id_beside_the_job_id():
    assert set(answer("2.3.0", "jar-run", "jar_run")) == {"jobid", "applicationId"}
    assert set(answer("2.2.1", "jar-run", "jar_run")) == {"jobid"}


@pytest.mark.parametrize("version", RESTARTING_VERSIONS)
def test_a_job_restarting_after_the_heartbeat_timeout_is_read_as_restarting_and_unhealthy(version):
    job = recorded_job(version, "restarting")
    assert job.state == JobState.RESTARTING
    assert job.failures >= 1  # the heartbeat timeout, in the exception history on every release
    assert job.checkpoints.latest_completed is not None and job.checkpoints.latest_completed.external_path
    assert not diagnose(CLUSTER, observed(version, "restarting")).healthy


@pytest.mark.parametrize(
    ("running", "judged_by"),
    [("2.4.0", "2.3.0"), ("3.0.0", "2.3.0"), ("1.20.9", "1.20.5"), ("1.20.3", "1.20.5"), ("1.17.2", "1.18.1")],
)
def test_a_release_without_a_catalogue_is_judged_by_the_nearest_recorded_one_and_says_so(running, judged_by):
    assert catalogue_release(running) == judged_by
    assert option_catalogue(running).flink_version == judged_by
    note = catalogue_note(running)
    assert note and f"Flink {running}" in note and f"Flink {judged_by}'s" in note


@pytest.mark.parametrize("running", ["2.3.0", "1.18.1", "1.20", "2.2"])
def test_a_recorded_release_or_line_needs_no_note(running):
    assert catalogue_note(running) is None


JOBMANAGER = {"jobmanager": "jobmanager"}  # role -> compose service


def test_the_audit_of_an_unrecorded_release_is_done_and_notes_the_catalogue_it_used(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("heartbeat:\n  timeout: 5000\n")
    result = audit_cluster(
        AuditInputs("c", "2.4.0", "http://flink", JOBMANAGER, configs={"jobmanager": read_flink_config(path)})
    )
    codes = {f.code: f for f in result.findings}
    assert "HEARTBEAT_TIMEOUT_SHORT" in codes  # audited all the same
    note = codes["KEY_CATALOGUE_NEAREST"]
    assert note.severity == "info" and "2.3.0" in note.current and "record.py 2.4.0" in note.recommended
    recorded = audit_cluster(
        AuditInputs("c", "2.3.0", "http://flink", JOBMANAGER, configs={"jobmanager": read_flink_config(path)})
    )
    assert "KEY_CATALOGUE_NEAREST" not in {f.code for f in recorded.findings}


@pytest.mark.parametrize(
    ("name", "release", "read"),
    [
        ("config.yaml", "1.18.1", False),  # 1.18 reads flink-conf.yaml only
        ("flink-conf.yaml", "1.18.1", True),
        ("config.yaml", "1.19.3", True),  # 1.19 and 1.20: config.yaml if present, else flink-conf.yaml
        ("flink-conf.yaml", "1.20.5", True),
        ("config.yaml", "2.0.2", True),
        ("flink-conf.yaml", "2.0.2", False),  # 2.x reads config.yaml only
        ("flink-conf.yaml", "2.3.0", False),
    ],
)
def test_a_config_file_the_release_never_reads_is_an_error(name, release, read):
    """The demo stack's own files (stack/docker/jobmanager/), as each release's image reads conf/."""
    config = read_flink_config(STACK_DIR / "docker" / "jobmanager" / name)
    found = [f for f in audit_flink_config(config, release) if f.code == "CONFIG_FILE_NOT_READ"]
    if read:
        assert found == []
    else:
        (finding,) = found
        assert finding.severity == "error" and f"never {name}" in finding.why and release in finding.why
