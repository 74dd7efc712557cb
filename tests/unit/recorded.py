"""The REST answers recorded from real Flink clusters, a folder per release (tests/fixtures/rest/README.md)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import requests.adapters

from flink_runbook.flink.answers import JobInfo, parse_job
from flink_runbook.flink.rest import FlinkRestClient

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "rest"
SCENARIOS = ("healthy", "frozen-before-timeout", "failed-heartbeat-timeout")


def _release(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in folder.name.removeprefix("flink-").split("."))


def _recorded_releases(*scenarios: str) -> tuple[str, ...]:
    """Every release recorded with all these scenarios, oldest first."""
    folders = [f for f in RECORDED.glob("flink-*") if all((f / s).is_dir() for s in scenarios)]
    return tuple(f.name.removeprefix("flink-") for f in sorted(folders, key=_release))


# Each test that iterates recorded releases runs on every one recorded (1.18 to the newest).
VERSIONS = _recorded_releases(*SCENARIOS)
# Recorded with the job RESTARTING between the heartbeat timeout and FAILED (when the recorder saw it).
RESTARTING_VERSIONS = _recorded_releases("restarting")
# A person's stops (record_rest.py --stops): the job cancelled, and stopped with a savepoint.
STOPS_VERSIONS = _recorded_releases("cancelled", "stopped-with-savepoint")
# A JobManager that runs its one job itself (stack/application-mode.yml), running and after its job FAILED.
APPLICATION_MODE_VERSIONS = _recorded_releases("application-mode-running", "application-mode-failed")
# The high-availability restarts (tests/fixtures/record_ha_rest.py) were recorded on some releases only.
HA_VERSIONS = _recorded_releases("ha-started-rest-answers", "ha-started-job-running")


def answer(version: str, scenario: str, name: str) -> Any:
    return json.loads((RECORDED / f"flink-{version}" / scenario / f"{name}.json").read_text())


def recorded_at_ms(version: str, scenario: str) -> int:
    return int((RECORDED / f"flink-{version}" / scenario / "recorded_at_ms.txt").read_text())


def recorded_job(version: str, scenario: str) -> JobInfo:
    return parse_job(
        answer(version, scenario, "job"),
        answer(version, scenario, "job_exceptions"),
        answer(version, scenario, "job_checkpoints"),
        answer(version, scenario, "job_checkpoints_config"),
    )


# Where each recorded file came from (the recorder, tests/fixtures/record_rest.py, asked these paths).
ENDPOINTS = {
    "overview": "/overview",
    "jobmanager_config": "/jobmanager/config",
    "taskmanagers": "/taskmanagers",
    "jobs_overview": "/jobs/overview",
    "job": "/jobs/{jid}",
    "job_exceptions": "/jobs/{jid}/exceptions",
    "job_checkpoints": "/jobs/{jid}/checkpoints",
    "job_checkpoints_config": "/jobs/{jid}/checkpoints/config",
    "job_metrics_restarts": "/jobs/{jid}/metrics",
    "job_config": "/jobs/{jid}/config",
}
def recorded_answers(version: str, scenario: str) -> dict[str, Any]:
    """Every recorded answer of one scenario by file name (without .json)."""
    folder = RECORDED / f"flink-{version}" / scenario
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


class RecordedJobManager(requests.adapters.BaseAdapter):
    """Answers a FlinkRestClient's GETs with recorded answers, as the JobManager gave them; 404 for the rest.

    The REST client, the parsers and the observation run unchanged on top: only the socket is replaced.
    """

    def __init__(self, answers: dict[str, Any], jid: str) -> None:
        super().__init__()
        self.by_path = {ENDPOINTS[name].format(jid=jid): body for name, body in answers.items()}
        self.asked: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = urlparse(request.url).path
        self.asked.append(path)
        response = requests.Response()
        response.url, response.request = request.url, request
        if path in self.by_path:
            response.status_code, body = 200, json.dumps(self.by_path[path]).encode()
        else:
            response.status_code, body = 404, json.dumps({"errors": [f"Not found: {path}"]}).encode()
        response.raw = io.BytesIO(body)  # read as a socket would be, in chunks
        return response

    def close(self) -> None:
        pass


def recorded_rest(url: str, answers: dict[str, Any], jid: str) -> tuple[FlinkRestClient, RecordedJobManager]:
    session = requests.Session()
    adapter = RecordedJobManager(answers, jid)
    session.mount(url, adapter)
    return FlinkRestClient(url, session=session, read_retries=0), adapter
