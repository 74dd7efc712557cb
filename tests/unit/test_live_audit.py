"""The live half of the audit, on REST answers recorded from real demo stacks of every release (tests/fixtures/rest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flink_runbook.audit.config import audit_flink_config
from flink_runbook.audit.live import audit_job_checkpointing, audit_live_config, same_setting
from flink_runbook.demo.versions import config_file_name
from flink_runbook.flink.answers import parse_cluster_config
from flink_runbook.flink.config_file import read_flink_config

from .recorded import VERSIONS

REST = Path(__file__).resolve().parent.parent / "fixtures" / "rest"
STACK = Path(__file__).resolve().parents[2] / "stack" / "docker"
URL = "http://127.0.0.1:8081"


def recorded(release: str, name: str):
    return json.loads((REST / f"flink-{release}" / "healthy" / f"{name}.json").read_text())


@pytest.mark.parametrize("release", VERSIONS)
def test_the_demo_jobmanagers_file_is_what_the_recorded_jobmanager_ran(release):
    file = read_flink_config(STACK / "jobmanager" / config_file_name(release))
    live = parse_cluster_config(recorded(release, "jobmanager_config"))
    assert audit_live_config(file, live, release, URL) == []


@pytest.mark.parametrize("release", VERSIONS)
def test_a_changed_file_shows_as_not_applied(tmp_path, release):
    name = config_file_name(release)
    text = (STACK / "jobmanager" / name).read_text()
    path = tmp_path / name
    path.write_text(text.replace("5000", "180000", 1))
    live = parse_cluster_config(recorded(release, "jobmanager_config"))
    (finding,) = audit_live_config(read_flink_config(path), live, release, URL)
    assert finding.code == "CONFIG_NOT_APPLIED"
    assert finding.current == "file heartbeat.timeout: 180000; running JobManager: 5000"
    line = read_flink_config(path).entries["heartbeat.timeout"].line
    assert finding.where == f"{path}:{line} heartbeat.timeout vs GET {URL}/jobmanager/config"


@pytest.mark.parametrize("release", VERSIONS)
def test_the_recorded_demo_job_checkpoints_and_keeps_its_checkpoints(release):
    config = recorded(release, "job_checkpoints_config")
    assert audit_job_checkpointing("realtime-cdc-demo", "jid", config, URL) == []
    off = {**config, "interval": 2**63 - 1}
    assert [f.code for f in audit_job_checkpointing("realtime-cdc-demo", "jid", off, URL)] == ["JOB_CHECKPOINTING_OFF"]
    assert [f.code for f in audit_job_checkpointing("realtime-cdc-demo", "jid", None, URL)] == ["JOB_CHECKPOINTING_OFF"]
    dropped = {**config, "externalization": {"enabled": False, "delete_on_cancellation": True}}
    assert [f.code for f in audit_job_checkpointing("j", "jid", dropped, URL)] == ["JOB_CHECKPOINTS_NOT_RETAINED"]
    slow = {**config, "interval": 20 * 60_000, "timeout": 30_000}
    found = audit_job_checkpointing("j", "jid", slow, URL)
    assert [f.code for f in found] == ["CHECKPOINT_INTERVAL_LONG", "CHECKPOINT_TIMEOUT_SHORT"]
    assert found[0].where == f"GET {URL}/jobs/jid/checkpoints/config (j) interval"


def test_checkpoint_timing_in_a_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "execution.checkpointing.interval: 15 min\nexecution.checkpointing.timeout: 30 s\n"
        "execution.checkpointing.dir: file:///cp\n"
        "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION\n"
    )
    found = {f.code: f for f in audit_flink_config(read_flink_config(path), "2.3.0")}
    assert found["CHECKPOINT_INTERVAL_LONG"].current == "execution.checkpointing.interval: 15 min"
    assert found["CHECKPOINT_TIMEOUT_SHORT"].where.endswith("config.yaml:2 execution.checkpointing.timeout")


def test_settings_compare_as_flink_reads_them():
    assert (
        same_setting("5000", "5 s")
        and same_setting("1024m", "1073741824b")
        and same_setting("Fixed-Delay", "fixed-delay")
    )
    assert not same_setting("5000", "6 s") and not same_setting("file:///a", "file:///b")
