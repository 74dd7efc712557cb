"""The demo stack's files say what the harness and the runbook rely on."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from flink_runbook.demo.job import committed_ids, job_sources
from flink_runbook.demo.versions import (
    DEFAULT_FLINK_VERSION,
    STACK_DIR,
    SUPPORTED_FLINK_VERSIONS,
    TESTED_FLINK_VERSIONS,
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
    assert env["FLINK_IMAGE"] == f"flink-runbook/flink:{DEFAULT_FLINK_VERSION}"  # plain `docker compose up`


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
    ("requested", "resolved"),
    [
        ("1.18", "1.18.1"),
        ("1.19", "1.19.3"),
        ("1.20", "1.20.5"),
        ("1.20.5", "1.20.5"),
        ("2.0", "2.0.2"),
        ("2.1", "2.1.3"),
        ("2.2", "2.2.1"),
        (" 2.3.0 ", "2.3.0"),
    ],
)
def test_flink_version_resolution(requested, resolved):
    assert resolve_flink_version(requested) == resolved


def test_the_tested_pair_is_the_last_1x_release_and_the_newest():
    assert TESTED_FLINK_VERSIONS == ("1.20.5", "2.3.0") and DEFAULT_FLINK_VERSION == "1.20.5"
    assert set(TESTED_FLINK_VERSIONS) <= set(SUPPORTED_FLINK_VERSIONS.values())


def test_unsupported_flink_version_names_the_value_and_the_choices():
    with pytest.raises(UnsupportedFlinkVersion, match=r"FLINK_VERSION='1\.17'.*1\.18.*2\.3\.0"):
        resolve_flink_version("1.17")
    with pytest.raises(UnsupportedFlinkVersion, match=r"FLINK_VERSION='1\.20\.3'"):
        resolve_flink_version("1.20.3")  # an older release of a line: the stack runs the line's newest


def test_config_file_name_follows_the_major_version():
    assert config_file_name("1.18.1") == "flink-conf.yaml"  # 1.18 reads no other
    assert config_file_name("1.20.5") == "flink-conf.yaml"
    assert config_file_name("2.0.2") == "config.yaml"
    assert config_file_name("2.3.0") == "config.yaml"


def test_committed_ids_ignore_in_progress_and_pending_part_files(tmp_path):
    (tmp_path / "ids-0-0.csv").write_text("1,100\n2,101\n")
    (tmp_path / "ids-0-1.csv").write_text("3,102\n")
    # The file sink writes in-progress data to hidden files until the checkpoint commits.
    (tmp_path / ".ids-0-2.csv.inprogress.abc").write_text("4,103\n")
    assert committed_ids(tmp_path) == [1, 2, 3]
    assert committed_ids(tmp_path / "missing") == []


def test_the_entrypoint_sets_options_in_flink_conf_yaml_where_flink_has_no_config_parser(tmp_path):
    """Flink 1.18 ships no bin/config-parser-utils.sh: the image's entrypoint replaces or appends `key: value`
    lines in conf/flink-conf.yaml itself, as the official 1.18 image did (the command after it is `true`)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "conf" / "flink-conf.yaml").write_text("jobmanager.rpc.address: localhost\nparallelism.default: 1\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "FLINK_HOME": str(tmp_path),
        "JOB_MANAGER_RPC_ADDRESS": "jobmanager",
        "FLINK_PROPERTIES": "parallelism.default: 2\n  heartbeat.timeout: 5000\n",
    }
    entrypoint = STACK_DIR / "image" / "docker-entrypoint.sh"
    subprocess.run(["bash", str(entrypoint), "true"], env=env, check=True, capture_output=True)
    assert (tmp_path / "conf" / "flink-conf.yaml").read_text() == (
        "jobmanager.rpc.address: jobmanager\nparallelism.default: 2\nheartbeat.timeout: 5000\n"
    )


def test_the_demo_job_of_1_18_takes_its_id_source_from_its_own_folder():
    """1.18's distribution has no DataGeneratorSource: IdSequence.java comes from stack/job/src-1.18/."""
    (ids_118,) = [p for p in job_sources("1.18.1") if p.name == "IdSequence.java"]
    assert ids_118.parent.parent.parent.name == "src-1.18"
    for release in ("1.19.3", "2.3.0"):
        (ids,) = [p for p in job_sources(release) if p.name == "IdSequence.java"]
        assert ids.parent.parent.parent.name == "src"
    assert [p.name for p in job_sources("1.18.1")] == [p.name for p in job_sources("2.3.0")]


def test_the_compat_table_says_what_failed_in_a_row_instead_of_stopping():
    from flink_runbook.demo.compat import ReleaseRow, compat_table

    passed = ReleaseRow("2.3.0", "CONTAINER_NOT_RUNNING (0.2 s)", "recovered (24.5 s), from checkpoint: yes", "0", "0")
    failed = ReleaseRow("1.18.1", failed="start the demo stack: StackError: jobmanager a|b exited")
    lost = ReleaseRow("2.0.2", "X (1 s)", "recovered (20 s), from checkpoint: yes", "3", "0")
    lines = compat_table([passed, failed, lost]).splitlines()
    assert lines[2].endswith("| 0 | 0 | pass |") and passed.passed
    assert lines[3] == "| 1.18.1 | - | - | - | - | FAILED: start the demo stack: StackError: jobmanager a\\|b exited |"
    assert lines[4].endswith("| 3 | 0 | FAILED: ids lost or duplicated |") and not lost.passed


@pytest.mark.parametrize("path", ["stack/flink-runbook.yml", "docs/compose-snippet.yml"])
def test_the_runbook_service_runs_this_version_with_its_socket_inventory_and_state(path):
    from flink_runbook.demo.runbook_image import runbook_image_tag
    from flink_runbook.demo.versions import REPO_ROOT

    service = yaml.safe_load((REPO_ROOT / path).read_text())["services"]["flink-runbook"]
    assert runbook_image_tag() in service["image"]
    # source:target[:ro], where a source may be ${VARIABLE:-default}
    targets = {re.search(r":(/[^:]*)(:ro)?$", volume).group(1): volume for volume in service["volumes"]}
    assert targets["/var/run/docker.sock"].startswith("/var/run/docker.sock:")
    assert targets["/etc/flink-runbook/inventory.yaml"].endswith(":ro")
    assert targets["/var/lib/flink-runbook"] == "flink-runbook-state:/var/lib/flink-runbook"
    assert all(port.startswith("127.0.0.1:") and port.endswith(":4200") for port in service["ports"])
    assert service["restart"] == "unless-stopped"


def test_the_inventory_for_the_container_names_the_jobmanager_on_the_network():
    from flink_runbook.inventory import load_inventory

    (cluster,) = load_inventory(STACK_DIR / "flink-runbook-inventory.yaml").clusters
    assert cluster.rest.url == "http://jobmanager:8081"
