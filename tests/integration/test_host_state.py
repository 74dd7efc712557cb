"""One lock and one lineage per host, whoever runs the tool, on real Flink.

A service and an operator run as different users, with different HOMEs. With an inventory that names no
state_dir, both must use the host's one state directory: the same recovery lock, the same job lineage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from flink_runbook.demo import faults
from flink_runbook.demo.drill import recover_runs, wait_for_event
from flink_runbook.demo.job import committed_ids, wait_for_job_state
from flink_runbook.demo.stack import demo_inventory
from flink_runbook.inventory import STATE_DIR_ENV, default_state_dir, load_inventory
from flink_runbook.polling import wait_until
from flink_runbook.runbook.keeping.host_lock import lock_file, read_holder
from flink_runbook.runbook.keeping.lineage import read_lineage

from .conftest import assert_every_id_exactly_once, one_release, run_demo_job

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}


@one_release
def test_a_cli_and_a_served_recovery_run_by_different_users_share_one_lock_and_one_lineage(
    disposable_stack, demo_job_jar, serve, tmp_path, monkeypatch
):
    stack = disposable_stack
    cluster = stack.settings.project
    for variable in (STATE_DIR_ENV, "XDG_STATE_HOME"):  # the default applies, whatever the users' settings
        monkeypatch.delenv(variable, raising=False)
    data = demo_inventory(stack.settings, demo_job_jar)
    data["clusters"][0].update(FAST)
    assert "state_dir" not in data
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data))
    (spec,) = load_inventory(inventory).clusters
    state = default_state_dir()
    assert spec.state_dir == state
    homes = {who: tmp_path / f"home-of-{who}" for who in ("service", "operator")}
    for home in homes.values():
        home.mkdir()
    try:
        old = run_demo_job(stack, demo_job_jar)
        wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 ids")
        home = os.environ.get("HOME")
        monkeypatch.setenv("HOME", str(homes["service"]))  # what the serving process inherits
        serve(inventory)
        monkeypatch.setenv("HOME", home or "/")
        wait_for_event(cluster, "flink.cluster.healthy", since=None, timeout_s=120)
        faults.kill(stack.taskmanager())
        wait_for_job_state(stack.rest, old, {"FAILED"}, timeout=120)
        committed = len(committed_ids(stack.output_dir))
        # The served monitor sees it within one 5 s tick and its trigger starts a recovery; the operator's CLI
        # starts now with its own temporary Prefect server: only the host lock stands between them.
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env |= {"HOME": str(homes["operator"]), "PREFECT_HOME": str(tmp_path / "cli-prefect-home")}
        command = [sys.executable, "-m", "flink_runbook.cli", "recover", "--config", str(inventory)]
        cli = subprocess.run(
            [*command, "--cluster", cluster, "--json"], capture_output=True, text=True, env=env, timeout=600
        )
        (cli_result,) = json.loads(cli.stdout)

        def served_runs_finished() -> list:
            return [r for r in recover_runs(cluster, since=None, config=inventory) if r.state and r.state.is_final()]

        served = wait_until(served_runs_finished, bool, timeout=300, what="a finished served recover run")
        print(f"\nCLI: {cli_result['status']}; served: {[(r.name, r.state_type.value) for r in served]}")

        # One state on the host: nothing under either user's HOME, the lock both took, one lineage.
        kept_at_home = sorted(str(p) for h in homes.values() for p in h.rglob("*") if "flink-runbook" in str(p))
        assert kept_at_home == [], kept_at_home
        holder = read_holder(lock_file(state, cluster))
        assert holder is not None and holder.released, holder
        assert cli_result["status"] in ("recovered", "healthy"), cli.stderr[-2000:]
        named = [j for j in stack.rest.jobs_overview() if j.name == "realtime-cdc-demo"]
        assert len([j for j in named if j.live]) == 1 and len(named) == 2, named  # the failed one and one copy
        (live,) = [j.id for j in named if j.live]
        assert read_lineage(state, cluster)["realtime-cdc-demo"][-2:] == (old, live)
        assert_every_id_exactly_once(stack, at_least=committed + 60)
    finally:
        for kept in state.glob(f"*/{cluster}.*"):  # this test's cluster only: the host's directory stays
            kept.unlink(missing_ok=True)
