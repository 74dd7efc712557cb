"""One lock and one lineage per host, whoever runs the tool: the state dir is the host's, not a user's HOME.

A recovery that cannot write it is refused before it starts: the CLI exits 2 naming the directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flink_runbook.demo.versions import REPO_ROOT
from flink_runbook.inventory import HOST_STATE_DIR, STATE_DIR_ENV, InventoryError, default_state_dir, load_inventory
from flink_runbook.runbook.keeping.host_lock import lock_file
from flink_runbook.runbook.keeping.host_state import StateDirError, check_state_dir


def inventory(directory: Path, **top) -> Path:
    cluster = {"name": "alpha", "rest": {"url": "http://127.0.0.1:9"}, "containers": {"compose_project": "alpha"}}
    path = directory / "inventory.yaml"
    path.write_text(yaml.safe_dump({**top, "clusters": [cluster]}))
    return path


@pytest.mark.parametrize("xdg_state_home", [None, "/tmp/xdg-state"])
def test_the_default_state_dir_is_the_hosts_whoever_runs_the_tool(tmp_path, monkeypatch, xdg_state_home):
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    if xdg_state_home:
        monkeypatch.setenv("XDG_STATE_HOME", xdg_state_home)
    else:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    seen = set()
    for home in ("/root", "/home/operator"):  # a service running as root, an operator's shell
        monkeypatch.setenv("HOME", home)
        (cluster,) = load_inventory(inventory(tmp_path)).clusters
        seen |= {default_state_dir(), cluster.state_dir}
    assert seen == {HOST_STATE_DIR} == {Path("/var/lib/flink-runbook")}


def test_the_environment_and_the_inventory_override_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "from-env"))
    (cluster,) = load_inventory(inventory(tmp_path)).clusters
    assert cluster.state_dir == tmp_path / "from-env"
    (cluster,) = load_inventory(inventory(tmp_path, state_dir=str(tmp_path / "from-file"))).clusters
    assert cluster.state_dir == tmp_path / "from-file"  # the inventory is what the service and the CLI share
    monkeypatch.setenv(STATE_DIR_ENV, "state")  # relative to each process's own working directory
    with pytest.raises(InventoryError) as error:
        load_inventory(inventory(tmp_path))
    assert str(error.value) == (
        f"{tmp_path / 'inventory.yaml'}: state_dir: the environment variable {STATE_DIR_ENV}='state' must be an "
        "absolute path"
    )


def test_a_missing_state_dir_is_made_with_its_mode_and_nothing_is_left_behind(tmp_path):
    state = tmp_path / "var" / "flink-runbook"
    umask = os.umask(0o022)
    try:
        check_state_dir(state, "alpha")
    finally:
        os.umask(umask)
    assert state.stat().st_mode & 0o777 == 0o755
    assert sorted(p.relative_to(state).as_posix() for p in state.rglob("*")) == ["engines", "lineage", "locks", "stops"]


def test_a_state_dir_that_cannot_be_made_refuses_the_recovery(tmp_path):
    (tmp_path / "a-file").write_text("")
    state = tmp_path / "a-file" / "flink-runbook"
    with pytest.raises(StateDirError) as error:
        check_state_dir(state, "alpha", tmp_path / "inventory.yaml")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'inventory.yaml'}: state_dir: {state} (the inventory's state_dir)")
    assert "cannot be written by" in message and "the recovery of alpha is not started" in message


def run_cli_with_read_only(read_only: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with `read_only` not writable to it: as root (who writes anything whatever the mode), in a mount
    namespace of its own where `read_only` is bind-mounted read-only; as another user, its mode says so."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    command = [sys.executable, "-m", "flink_runbook.cli", *args]
    if os.geteuid() == 0:
        remount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
        command = ["unshare", "--mount", "--", "sh", "-c", remount, "sh", str(read_only), *command]
    else:
        read_only.chmod(0o555 if read_only.is_dir() else 0o444)
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)


@pytest.mark.parametrize("read_only", ["directory", "lock file"])
def test_the_cli_refuses_a_recovery_with_exit_2_when_it_cannot_write_the_state_dir(tmp_path, read_only):
    state = tmp_path / "state"
    lock = lock_file(state, "alpha")
    lock.parent.mkdir(parents=True)
    lock.write_text("")  # e.g. made by a service running as another user, with a mode this one cannot write
    before = sorted(p.as_posix() for p in state.rglob("*"))
    config = inventory(tmp_path, state_dir=str(state))
    result = run_cli_with_read_only(
        state if read_only == "directory" else lock, "recover", "--config", str(config), "--cluster", "alpha"
    )
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    said = f"flink-runbook: {config}: state_dir: {state} (the inventory's state_dir) cannot be written by "
    assert result.stderr.startswith(said), result.stderr
    assert "the recovery of alpha is not started" in result.stderr
    assert sorted(p.as_posix() for p in state.rglob("*")) == before  # nothing changed
