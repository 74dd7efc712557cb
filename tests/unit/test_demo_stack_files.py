"""The demo stack's files say what the harness and the runbook rely on."""

from __future__ import annotations

import pytest
import yaml

from flink_runbook.demo.job import committed_ids
from flink_runbook.demo.versions import (
    STACK_DIR,
    UnsupportedFlinkVersion,
    config_file_name,
    resolve_flink_version,
)


@pytest.mark.parametrize("name", ["docker-compose.yml", "flink-properties.yml"])
def test_compose_file_publishes_rest_on_loopback_with_restart_policy(name):
    compose = yaml.safe_load((STACK_DIR / name).read_text())  # merge keys resolved, as Compose reads them
    services = compose["services"]
    assert set(services) == {"jobmanager", "taskmanager"}
    assert services["jobmanager"]["ports"] == ["127.0.0.1:${FLINK_REST_PORT}:8081"]
    assert "ports" not in services["taskmanager"]
    for service in services.values():
        assert service["restart"] == "unless-stopped"
        assert service["deploy"]["resources"]["limits"]["memory"]


def test_compose_defaults_name_the_runbook_project():
    env = dict(line.split("=", 1) for line in (STACK_DIR / ".env").read_text().splitlines() if "=" in line)
    assert env["COMPOSE_PROJECT_NAME"] == "realtime-pipeline"
    assert env["FLINK_CONF_FILE"] == "flink-conf.yaml"


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@pytest.mark.parametrize("role", ["jobmanager", "taskmanager"])
def test_flink_configs_make_the_incident_quick_and_recoverable(role):
    legacy = _flat(yaml.safe_load((STACK_DIR / "docker" / role / "flink-conf.yaml").read_text()))
    standard = _flat(yaml.safe_load((STACK_DIR / "docker" / role / "config.yaml").read_text()))
    for conf in (legacy, standard):
        assert conf["heartbeat.interval"] == 1000
        assert conf["heartbeat.timeout"] == 5000
        assert conf["restart-strategy.type"] == "fixed-delay"
        assert conf["restart-strategy.fixed-delay.attempts"] == 3
        assert conf["restart-strategy.fixed-delay.delay"] == "1 s"
        assert conf["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
        assert "--add-opens=java.base/java.util=ALL-UNNAMED" in conf["env.java.opts.all"]
    # The checkpoint directory key was renamed in 2.x.
    assert legacy["state.checkpoints.dir"] == "file:///data/checkpoints"
    assert standard["execution.checkpointing.dir"] == "file:///data/checkpoints"


@pytest.mark.parametrize(
    ("requested", "resolved"), [("1.20", "1.20.3"), ("1.20.3", "1.20.3"), ("2.2", "2.2.0"), (" 2.2.0 ", "2.2.0")]
)
def test_flink_version_resolution(requested, resolved):
    assert resolve_flink_version(requested) == resolved


def test_unsupported_flink_version_names_the_value_and_the_choices():
    with pytest.raises(UnsupportedFlinkVersion, match=r"FLINK_VERSION='1\.17'.*1\.20"):
        resolve_flink_version("1.17")


def test_config_file_name_follows_the_major_version():
    assert config_file_name("1.20.3") == "flink-conf.yaml"
    assert config_file_name("2.2.0") == "config.yaml"


def test_committed_ids_ignore_in_progress_and_pending_part_files(tmp_path):
    (tmp_path / "ids-0-0.csv").write_text("1,100\n2,101\n")
    (tmp_path / "ids-0-1.csv").write_text("3,102\n")
    # The file sink writes in-progress data to hidden files until the checkpoint commits.
    (tmp_path / ".ids-0-2.csv.inprogress.abc").write_text("4,103\n")
    assert committed_ids(tmp_path) == [1, 2, 3]
    assert committed_ids(tmp_path / "missing") == []
