"""audit against real stacks (1.20 and 2.2): files, the live REST configuration, --fix, bad input.

The stack's own files are copied first: --fix edits the copies, never stack/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flink_runbook.demo.image import flink_image_tag
from flink_runbook.demo.stack import COMPOSE_FILE, compose_variables
from flink_runbook.demo.versions import STACK_DIR, config_file_name

from .conftest import one_release, write_inventory

pytestmark = pytest.mark.usefixtures("prefect_server")


def copy_stack_files(stack, directory: Path) -> dict:
    """The stack's compose file and its version's Flink config files, copied; the inventory's audit section."""
    conf = config_file_name(stack.settings.flink_version)
    shutil.copy(COMPOSE_FILE, directory / "docker-compose.yml")
    shutil.copy(STACK_DIR / ".env", directory / ".env")
    for role in ("jobmanager", "taskmanager"):
        (directory / role).mkdir()
        shutil.copy(STACK_DIR / "docker" / role / conf, directory / role / conf)
    return {
        "compose_file": str(directory / "docker-compose.yml"),
        "jobmanager_config": str(directory / "jobmanager" / conf),
        "taskmanager_config": str(directory / "taskmanager" / conf),
        "compose_variables": compose_variables(stack.settings, flink_image_tag(stack.settings.flink_version)),
    }


def audit(inventory: Path, *args: str, api_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "audit", "--config", str(inventory), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PREFECT_API_URL": api_url},
    )


def codes(result: dict) -> dict[str, int]:
    found: dict[str, int] = {}
    for finding in result["findings"]:
        found[finding["code"]] = found.get(finding["code"], 0) + 1
    return found


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_the_running_stack_is_audited_live_and_its_files_match_what_runs(running_stack, tmp_path, prefect_server):
    files = tmp_path / "files"
    files.mkdir()
    inventory = write_inventory(running_stack, tmp_path, audit=copy_stack_files(running_stack, files))
    done = audit(inventory, "--json", api_url=prefect_server.api_url)
    assert done.returncode == 1, done.stderr[-2000:]  # the demo is deliberately fragile
    (result,) = json.loads(done.stdout)
    assert result["flink_version"] == running_stack.settings.flink_version  # from GET /overview
    url = running_stack.settings.rest_url
    assert f"GET {url}/jobmanager/config" in result["sources"]
    assert any(s.endswith("/checkpoints/config") for s in result["sources"]), result["sources"]
    found = codes(result)
    # Both files carry the runbook's fragile settings; the running job checkpoints (set in its code),
    # keeps its checkpoints, and the files are what runs.
    assert found["HEARTBEAT_TIMEOUT_SHORT"] == 2 and found["RESTART_BUDGET_SHORT"] == 2
    assert found["CPU_LIMIT_LOW"] == 1
    for absent in (
        "CHECKPOINTING_NOT_CONFIGURED",
        "JOB_CHECKPOINTING_OFF",
        "JOB_CHECKPOINTS_NOT_RETAINED",
        "CONFIG_NOT_APPLIED",
        "CHECKPOINT_DIR_NOT_PERSISTENT",
        "IMAGE_VERSIONS_DIFFER",
    ):
        assert absent not in found, (absent, result["findings"])


def test_fix_edits_the_files_with_backups_and_the_change_shows_as_not_applied(running_stack, tmp_path, prefect_server):
    files = tmp_path / "files"
    files.mkdir()
    inventory = write_inventory(running_stack, tmp_path, audit=copy_stack_files(running_stack, files))
    originals = snapshot(files)
    fixed = audit(inventory, "--fix", api_url=prefect_server.api_url)
    assert fixed.returncode == 1, fixed.stderr[-2000:]  # CPU_LIMIT_LOW and a restart to apply remain
    assert "Traceback" not in fixed.stderr
    conf = config_file_name(running_stack.settings.flink_version)
    for role in ("jobmanager", "taskmanager"):
        path = files / role / conf
        (backup,) = path.parent.glob(f"{conf}.bak-*")
        assert backup.read_bytes() == originals[str(path)]
        assert f"fixed {path} (backup {backup})" in fixed.stdout
    assert "+heartbeat.timeout: 180000" in fixed.stdout or "+  timeout: 180000" in fixed.stdout
    assert (files / "docker-compose.yml").read_bytes() == originals[str(files / "docker-compose.yml")]
    assert not list(files.glob("docker-compose.yml.bak-*"))

    (after,) = json.loads(audit(inventory, "--json", api_url=prefect_server.api_url).stdout)
    found = codes(after)
    assert "HEARTBEAT_TIMEOUT_SHORT" not in found and "RESTART_BUDGET_SHORT" not in found
    # The JobManager still runs with the old values until it is restarted: the audit says so, per key.
    not_applied = [f for f in after["findings"] if f["code"] == "CONFIG_NOT_APPLIED"]
    assert any("heartbeat.timeout: 180000; running JobManager: 5000" in f["current"] for f in not_applied), not_applied
    assert all(f"/jobmanager/{conf}:" in f["where"] for f in not_applied)


@pytest.mark.parametrize(
    ("broken", "content", "expected"),
    [
        ("taskmanager", b"heartbeat.timeout: 5000\n\xff\xfe\n", "not UTF-8 text"),
        ("docker-compose.yml", b"services: [\n", "docker-compose.yml: line"),
    ],
    ids=["flink-config", "compose"],
)
def test_a_file_that_cannot_be_read_exits_2_and_nothing_is_changed(
    running_stack, tmp_path, prefect_server, broken, content, expected
):
    files = tmp_path / "files"
    files.mkdir()
    inventory = write_inventory(running_stack, tmp_path, audit=copy_stack_files(running_stack, files))
    conf = config_file_name(running_stack.settings.flink_version)
    (files / broken / conf if broken == "taskmanager" else files / broken).write_bytes(content)
    before = snapshot(files)
    done = audit(inventory, "--fix", api_url=prefect_server.api_url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert snapshot(files) == before  # not even the readable files were touched


@one_release  # our own logic, whatever the release (README: Tests)
def test_bad_audit_keys_exit_2(running_stack, tmp_path, prefect_server):
    inventory = write_inventory(running_stack, tmp_path, audit={"compose": "docker-compose.yml"})
    done = audit(inventory, api_url=prefect_server.api_url)
    assert done.returncode == 2
    assert "audit.compose: unknown key; expected one of: compose_file" in done.stderr
    # No file named: the running JobManager is audited, and the output says what could not be.
    no_section = write_inventory(running_stack, tmp_path, audit={})
    done = audit(no_section, api_url=prefect_server.api_url)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "no compose file in the inventory" in done.stdout and "judged from the running JobManager" in done.stdout
