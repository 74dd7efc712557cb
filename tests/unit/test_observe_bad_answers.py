"""A REST answer with a field missing or of another type is a finding of the cluster, never an exception.

Every file under tests/fixtures/rest/ (every recorded release, from real clusters), every
field in it (every key of every object, every element of every list, and the answer itself), two
mutations each: removed, and replaced by a value of another JSON type. The observation runs unchanged
(REST client, parsers, observe_cluster) on a replay of the recorded answers.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest

from flink_runbook.runbook.clients import ClusterClients
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.observe import ClusterObservation, Depth, observe_cluster

from .recorded import ENDPOINTS, SCENARIOS, VERSIONS, recorded_answers, recorded_rest
from .test_findings import CLUSTER

NOT_OBSERVED = {  # recorded, but no runbook check reads them
    "job_metrics_restarts": "numRestarts is 0 for a FAILED job that restarted (fixtures README)",
    "job_config": "the job's execution config; the audit reads checkpoints/config instead",
}
# Fields Flink itself leaves out or sets to null: removing one must change nothing but the value read.
MAY_BE_ABSENT = {
    "taskmanagers[*].path",
    "exceptionHistory.truncated",
    "exceptionHistory.entries[*].timestamp",
    "exceptionHistory.entries[*].taskName",  # a global failure has no task
    "exceptionHistory.entries[*].taskManagerId",  # nor a TaskManager
    "latest.completed",  # none completed yet
    "latest.savepoint",
    "latest.restored",  # never restored
    "latest.completed.external_path",
    "latest.savepoint.external_path",
    "latest.restored.external_path",
    "latest.completed.latest_ack_timestamp",
    "latest.savepoint.latest_ack_timestamp",
    "latest.restored.restore_timestamp",
    "latest.completed.is_savepoint",
    "latest.savepoint.is_savepoint",
    "latest.restored.is_savepoint",
    "externalization",
    "externalization.enabled",
    "externalization.delete_on_cancellation",
    "duration",
}


def fields(value: Any, path: str = "") -> Iterator[str]:
    """Every field path, as the parsers name them: a.b, a[0].b, [0].key."""
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            yield child_path
            yield from fields(child, child_path)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            child_path = f"{path}[{index}]"
            yield child_path
            yield from fields(child, child_path)


def _steps(path: str) -> list[str | int]:
    return [int(s[1:-1]) if s.startswith("[") else s for s in re.findall(r"\[\d+\]|[^.\[\]]+", path)]


def mutated(answer: Any, path: str, how: str) -> Any:
    """A copy of the answer with the field at `path` removed, or of another JSON type."""
    copied = copy.deepcopy(answer)
    *parents, last = _steps(path)
    holder = copied
    for step in parents:
        holder = holder[step]
    if how == "removed":
        del holder[last]
    else:
        holder[last] = other_type(holder[last])
    return copied


def other_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, dict):
        return "an object was here"
    if isinstance(value, list):
        return {"a list": "was here"}
    return "null was here"


def pattern(path: str) -> str:
    return re.sub(r"\[\d+\]", "[*]", path)


def observe(version: str, scenario: str, answers: dict[str, Any]) -> tuple[ClusterObservation, list[str]]:
    jid = recorded_answers(version, scenario)["job"]["jid"]
    rest, replay = recorded_rest(CLUSTER.rest.url, answers, jid)
    clients = ClusterClients(rest=rest, docker=None, docker_error="not asked: recorded REST answers only")
    return observe_cluster(CLUSTER, clients, Depth.FULL), replay.asked


def what_was_read(seen: ClusterObservation) -> tuple:
    """The observation without what depends on the clock (heartbeat ages, observed_at)."""
    tms = [(tm.id, tm.slots_total, tm.slots_free, tm.path, tm.heartbeat_age_ms is None) for tm in seen.taskmanagers]
    return seen.jobmanager, tms, seen.jobs


CASES = [
    (version, scenario, name)
    for version in VERSIONS
    for scenario in SCENARIOS
    for name in sorted(recorded_answers(version, scenario))
    if name not in NOT_OBSERVED
]


def _fields_to_mutate() -> dict[tuple[str, str, str], set[str]]:
    """Per case, the fields whose shape (path with list indexes as [*]) no newer release's same answer has:
    every release runs, each shape is mutated once, on the newest release that has it (mutating the same
    field of the same parser again on each of nine releases would take minutes and prove nothing more)."""
    covered: dict[tuple[str, str], set[str]] = {}
    to_mutate = {}
    for version, scenario, name in sorted(CASES, key=lambda case: VERSIONS.index(case[0]), reverse=True):
        paths = set(fields(recorded_answers(version, scenario)[name]))
        seen = covered.setdefault((scenario, name), set())
        to_mutate[(version, scenario, name)] = {p for p in paths if pattern(p) not in seen}
        seen.update(pattern(p) for p in paths)
    return to_mutate


FIELDS_TO_MUTATE = _fields_to_mutate()


def test_every_recorded_file_is_observed_or_said_why_not():
    for version in VERSIONS:
        for scenario in SCENARIOS:
            answers = recorded_answers(version, scenario)
            seen, asked = observe(version, scenario, answers)
            assert seen.jobmanager.reachable, seen.jobmanager.error
            jid = answers["job"]["jid"]
            read = {name for name, path in ENDPOINTS.items() if path.format(jid=jid) in asked}
            assert set(answers) == read | set(NOT_OBSERVED), (version, scenario)


@pytest.mark.parametrize(("version", "scenario", "name"), CASES)
def test_a_bad_field_is_a_finding_that_names_the_url_and_the_field(version, scenario, name):
    answers = recorded_answers(version, scenario)
    baseline, _ = observe(version, scenario, answers)
    url = CLUSTER.rest.url + ENDPOINTS[name].format(jid=answers["job"]["jid"])
    named, unread = 0, 0
    paths = ["", *(p for p in fields(answers[name]) if p in FIELDS_TO_MUTATE[(version, scenario, name)])]
    for path in paths:
        for how in ("removed", "of another type"):
            if how == "removed" and (path == "" or path.endswith("]")):
                continue  # a shorter list is another valid answer, not a field removed
            bad = {**answers, name: mutated(answers[name], path, how) if path else other_type(answers[name])}
            seen, _ = observe(version, scenario, bad)  # never raises
            findings = diagnose(CLUSTER, seen).findings
            invalid = [f for f in findings if f.code == "JOBMANAGER_REST_INVALID"]
            where = f"{name}.json {path or '(the answer)'} {how}"
            if invalid:
                (finding,) = invalid
                assert finding.severity == "critical", where
                assert url in finding.evidence, where
                assert f"field {path or '(the answer)'} " in finding.evidence or path == "", (where, finding.evidence)
                named += 1
            elif how == "removed" and pattern(path) in MAY_BE_ABSENT:
                assert seen.jobmanager.reachable, where  # Flink omits it at times: read as absent
            else:  # a field no check reads: the observation is the same as with the recorded answer
                assert what_was_read(seen) == what_was_read(baseline), f"{where}: read, but not said to be invalid"
                unread += 1
    assert named > 0  # each answer has fields the runbook reads (its whole answer of another type, at least)


def with_heartbeat_timeout(answers: dict[str, Any], value: str) -> dict[str, Any]:
    config = [
        e if e["key"] != "heartbeat.timeout" else {"key": e["key"], "value": value}
        for e in answers["jobmanager_config"]
    ]
    return {**answers, "jobmanager_config": config}


@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeat_settings_are_read_as_flink_reads_durations(version):
    answers = recorded_answers(version, "healthy")
    for written, ms in (("5000", 5000), ("3 min", 180_000), ("50 s", 50_000), ("PT1M", 60_000)):
        seen, _ = observe(version, "healthy", with_heartbeat_timeout(answers, written))
        assert seen.jobmanager.reachable and seen.jobmanager.heartbeat_timeout_ms == ms, written
    seen, _ = observe(version, "healthy", with_heartbeat_timeout(answers, "soon"))
    (finding,) = [f for f in diagnose(CLUSTER, seen).findings if f.code == "JOBMANAGER_REST_INVALID"]
    assert "heartbeat.timeout" in finding.evidence and "'soon'" in finding.evidence
