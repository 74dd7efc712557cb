"""The demo stack configured the official image's way, through FLINK_PROPERTIES only (stack/flink-properties.yml:
no config file mounted, an anchor both services merge), on real Flink: diagnosed healthy, audited with each
finding at its FLINK_PROPERTIES line, a frozen TaskManager recovered with the sink exactly once, and
`audit --fix` writing the fix in FLINK_PROPERTIES, applied once the containers are recreated.

One stack for the whole story (the outcome does not depend on the release): the compose file and .env are
copies, so --fix edits them and the stack is recreated from the edited copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flink_runbook.demo import faults
from flink_runbook.demo.job import committed_ids, wait_for_job_state
from flink_runbook.demo.stack import FLINK_PROPERTIES_COMPOSE_FILE
from flink_runbook.demo.versions import STACK_DIR
from flink_runbook.flows.audit import audit_flow
from flink_runbook.flows.diagnose import diagnose_flow
from flink_runbook.polling import wait_until

from .conftest import assert_every_id_exactly_once, one_release, recover_as_json, run_demo_job, write_inventory
from .test_audit import audit, codes

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` that reads `text` (stripped)."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip() == text)


@one_release
def test_a_stack_configured_by_flink_properties_only_is_audited_fixed_and_recovered_exactly_once(
    start_stack, flink_version, demo_job_jar, tmp_path, prefect_server
):
    files = tmp_path / "files"
    files.mkdir()
    compose = files / FLINK_PROPERTIES_COMPOSE_FILE.name
    shutil.copy(FLINK_PROPERTIES_COMPOSE_FILE, compose)
    shutil.copy(STACK_DIR / ".env", files / ".env")
    stack = start_stack(flink_version, compose_file=compose)
    old_job = run_demo_job(stack, demo_job_jar)
    inventory = write_inventory(stack, tmp_path, demo_job_jar, **FAST)

    # diagnose: healthy, the demo job running.
    (diagnosis,) = diagnose_flow(config=str(inventory))
    assert diagnosis["healthy"] is True, diagnosis["findings"]
    assert [(j["name"], j["state"]) for j in diagnosis["jobs"]] == [("realtime-cdc-demo", "RUNNING")]

    # audit: each finding where it is written, file and line in FLINK_PROPERTIES; the restart policy the
    # services merge from the anchor counts.
    done = audit(inventory, "--json", api_url=prefect_server.api_url)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    (result,) = json.loads(done.stdout)
    found = codes(result)
    assert "RESTART_POLICY_MISSING" not in found and "CONFIG_NOT_APPLIED" not in found, result["findings"]
    timeout_line = line_of(compose, "heartbeat.timeout: 5000")  # the jobmanager's, the first
    wheres = {f["where"] for f in result["findings"] if f["code"] == "HEARTBEAT_TIMEOUT_SHORT"}
    assert f"{compose}:{timeout_line} services.jobmanager.environment.FLINK_PROPERTIES heartbeat.timeout" in wheres
    assert len(wheres) == 2  # the taskmanager's own line too
    (budget,) = [f for f in result["findings"] if f["code"] == "RESTART_BUDGET_SHORT"]
    strategy_line = line_of(compose, "restart-strategy.type: fixed-delay")
    assert budget["where"].startswith(f"{compose}:{strategy_line} services.jobmanager.environment.FLINK_PROPERTIES")
    assert any(n.startswith("taskmanager: no Flink config file") for n in result["not_read"]), result["not_read"]

    # recover: a frozen TaskManager (the runbook's incident, quick with these settings), every id exactly once.
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    faults.freeze(stack.taskmanager())
    wait_for_job_state(stack.rest, old_job, {"FAILED"}, timeout=120)
    committed = len(committed_ids(stack.output_dir))
    (recovered,) = recover_as_json(config=str(inventory), all_clusters=True)
    assert recovered["status"] == "recovered", json.dumps(recovered, indent=1)[-3000:]
    (job,) = recovered["jobs"]
    assert job["new_id"] not in (None, old_job) and job["restored_from"]
    assert_every_id_exactly_once(stack, at_least=committed + 40)

    # audit --fix (the flow the CLI runs, in this process): written in FLINK_PROPERTIES (backup first), the rest
    # of the file byte for byte.
    before = compose.read_text()
    (fixed,) = audit_flow(config=str(inventory), fix=True)
    assert any("heartbeat.timeout: 5000 -> 180000" in c for w in fixed["fixes"] for c in w["changes"]), fixed["fixes"]
    (backup,) = files.glob(f"{compose.name}.bak-*")
    assert backup.read_text() == before
    after = compose.read_text()
    assert after.splitlines()[timeout_line - 1] == "        heartbeat.timeout: 180000"
    differing = [n for n, (a, b) in enumerate(zip(before.splitlines(), after.splitlines(), strict=True)) if a != b]
    assert all(
        "heartbeat.timeout" in after.splitlines()[n] or "restart-strategy" in after.splitlines()[n] for n in differing
    ), differing
    (again,) = audit_flow(config=str(inventory))
    assert "HEARTBEAT_TIMEOUT_SHORT" not in codes(again) and "RESTART_BUDGET_SHORT" not in codes(again)
    # The audit restarts nothing: the running JobManager keeps the environment it was created with, and says so.
    not_applied = [f for f in again["findings"] if f["code"] == "CONFIG_NOT_APPLIED"]
    assert any(
        "FLINK_PROPERTIES heartbeat.timeout: 180000; running JobManager: 5000" in f["current"] for f in not_applied
    ), not_applied

    # Recreated from the edited file (what `docker compose up -d` does, by a human's decision), it runs with it.
    stack.up()
    assert stack.rest.jobmanager_config()["heartbeat.timeout"] == "180000"
    (applied,) = audit_flow(config=str(inventory))
    assert "CONFIG_NOT_APPLIED" not in codes(applied) and "HEARTBEAT_TIMEOUT_SHORT" not in codes(applied)
