"""The container advice on compose files: the runbook's snippets, the demo stack, and what goes wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_runbook.audit.compose import audit_compose
from flink_runbook.audit.compose_file import ComposeFileError, interpolate, read_compose_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
STACK = Path(__file__).resolve().parents[2] / "stack"
ROLES = {"jobmanager": "jobmanager", "taskmanager": "taskmanager"}


def compose(tmp_path: Path, text: str):
    path = tmp_path / "docker-compose.yml"
    path.write_text(text)
    return read_compose_file(path)


def by_code(findings) -> dict:
    return {f.code: f for f in findings}


def test_the_runbooks_compose_advice():
    findings = by_code(
        audit_compose(
            read_compose_file(FIXTURES / "runbook" / "docker-compose.yml"),
            ROLES,
            {"jobmanager": "1600m", "taskmanager": "1728m"},
            "file:///opt/flink/checkpoints",
            4,
        )
    )
    # Its taskmanager follows the advice; its jobmanager was never given a restart policy, and the
    # checkpoint directory is mounted in the jobmanager only.
    assert set(findings) == {"RESTART_POLICY_MISSING", "MEMORY_LIMIT_MISSING", "CHECKPOINT_DIR_NOT_PERSISTENT"}
    assert findings["RESTART_POLICY_MISSING"].where.endswith("docker-compose.yml:4 services.jobmanager.restart")
    assert "in the taskmanager" in findings["CHECKPOINT_DIR_NOT_PERSISTENT"].current


def test_the_demo_stack_with_its_env_file():
    stack = read_compose_file(STACK / "docker-compose.yml")
    assert stack.unresolved == set()
    assert stack.services["taskmanager"].settings["deploy"]["resources"]["limits"]["memory"] == "1536M"
    findings = audit_compose(
        stack, ROLES, {"jobmanager": "1024m", "taskmanager": "1024m"}, "file:///data/checkpoints", 2
    )
    assert [(f.code, f.current) for f in findings] == [
        ("CPU_LIMIT_LOW", "deploy.resources.limits.cpus: 1.0 for 2 task slot(s)")
    ]


def test_a_memory_limit_below_flinks_process_size_is_an_oom_kill_waiting_to_happen(tmp_path):
    file = compose(
        tmp_path,
        "services:\n  jobmanager:\n    image: f:1\n    restart: always\n    mem_limit: 2g\n"
        "  taskmanager:\n    image: f:1\n    restart: always\n    deploy:\n      resources:\n        limits:\n"
        "          memory: 1G\n",
    )
    found = by_code(audit_compose(file, ROLES, {"jobmanager": "1600m", "taskmanager": "1728m"}, None, 1))
    below = found["MEMORY_LIMIT_BELOW_PROCESS_SIZE"]
    assert (below.severity, below.current) == (
        "error",
        "deploy.resources.limits.memory: 1G < taskmanager.memory.process.size: 1728m",
    )
    assert below.where.endswith("docker-compose.yml:12 services.taskmanager.deploy.resources.limits.memory")


def test_different_images_and_unshared_checkpoints(tmp_path):
    file = compose(
        tmp_path,
        "services:\n  jobmanager:\n    image: flink:1.20\n    restart: always\n    volumes: ['jm-data:/data']\n"
        "  taskmanager:\n    image: flink:2.2\n    restart: always\n    volumes:\n"
        "      - {type: volume, source: tm-data, target: /data}\n",
    )
    found = by_code(audit_compose(file, ROLES, {}, "file:///data/checkpoints", 1))
    assert found["IMAGE_VERSIONS_DIFFER"].current == "jobmanager flink:1.20, taskmanager flink:2.2"
    assert (
        found["CHECKPOINT_DIR_NOT_SHARED"].current
        == "/data/checkpoints: jobmanager mounts jm-data, taskmanager tm-data"
    )
    assert "CHECKPOINT_DIR_NOT_SHARED" not in by_code(audit_compose(file, ROLES, {}, "s3://bucket/checkpoints", 1))


def test_variables_as_compose_fills_them(tmp_path):
    unresolved: set[str] = set()
    values = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}-${EMPTY:-d}-${EMPTY-d}-${UNSET:-u}-$$SET-$SET", values, unresolved) == "x-d--u-$SET-x"
    assert interpolate("${UNSET}", values, unresolved) == "${UNSET}" and unresolved == {"UNSET"}
    (tmp_path / ".env").write_text("# comment\nIMAGE=flink:1.20\nexport LIMIT='2G'\n")
    file = compose(
        tmp_path, "services:\n  taskmanager:\n    image: ${IMAGE}\n    mem_limit: ${LIMIT}\n    cpus: ${CPUS}\n"
    )
    assert file.services["taskmanager"].settings == {"image": "flink:1.20", "mem_limit": "2G", "cpus": "${CPUS}"}
    found = audit_compose(file, {"taskmanager": "taskmanager"}, {}, None, 1)
    assert found[0].code == "COMPOSE_VARIABLES_UNSET" and found[0].current == "CPUS"
    assert (
        read_compose_file(tmp_path / "docker-compose.yml", {"IMAGE": "mine"}).services["taskmanager"].settings["image"]
        == "mine"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("services: [a\n", "not valid YAML"),
        ("version: '3'\n", "no 'services:' map"),
        ("services:\n  tm: 3\n", "line 2: service tm"),
    ],
)
def test_bad_compose_files_are_named(tmp_path, text, expected):
    with pytest.raises(ComposeFileError, match=expected) as caught:
        compose(tmp_path, text)
    assert str(tmp_path / "docker-compose.yml") in str(caught.value)
