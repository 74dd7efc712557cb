"""What the serving process frees at start after an unclean stop, and when it calls the monitor stalled (pure)."""

from __future__ import annotations

import json
from pathlib import Path

from flink_runbook.deployments.reconcile import (
    OpenRun,
    RecoveryLock,
    ScheduledRun,
    SlotCount,
    leases_to_release,
    read_lease_files,
    runs_with_stale_parameters,
    runs_without_a_process,
    slots_to_lower,
)
from flink_runbook.deployments.watchdog import Tick, monitor_health, why_ticks_did_not_finish

STARTED = 1_000.0


def run(name: str, state: str = "RUNNING", since: float = STARTED - 30, has_process: bool = False) -> OpenRun:
    return OpenRun(id=name, name=name, deployment_id="d", state=state, state_since=since, has_process=has_process)


def test_runs_opened_before_the_start_with_no_process_are_dead():
    runs = [run("dead"), run("pending-dead", "PENDING"), run("alive", has_process=True), run("new", since=STARTED + 1)]
    assert [r.name for r in runs_without_a_process(runs, STARTED)] == ["dead", "pending-dead"]


def test_slots_are_lowered_only_to_what_live_holders_hold():
    counts = [SlotCount("deployment:monitor", 1, 0), SlotCount("deployment:recover", 1, 1), SlotCount("x", 0, 0)]
    assert slots_to_lower(counts) == [("deployment:monitor", 1, 0)]


def test_a_lease_is_released_only_when_its_holder_has_ended():
    lock = RecoveryLock("flink-recover-a", 1, {"lease-1": "run-dead", "lease-2": "run-alive"})
    assert leases_to_release(lock, ended_holders={"run-dead"}, recover_runs_open=True) == ["lease-1"]


def test_a_lease_with_no_holder_is_released_only_when_no_recover_run_is_open():
    lock = RecoveryLock("flink-recover-a", 1, {"lease-1": None})
    assert leases_to_release(lock, set(), recover_runs_open=True) == []
    assert leases_to_release(lock, set(), recover_runs_open=False) == ["lease-1"]


def test_lease_files_as_prefect_writes_them(tmp_path: Path):
    # The shape of prefect.server.concurrency.lease_storage.filesystem's files (Prefect 3.9.1).
    (tmp_path / "5b0c.json").write_text(
        json.dumps(
            {
                "id": "5b0c",
                "resource_ids": ["limit-1"],
                "metadata": {"slots": 1, "holder": {"type": "flow_run", "id": "run-9"}},
                "expiration": "2026-12-01T06:00:00+00:00",
                "created_at": "2026-12-01T05:59:00+00:00",
            }
        )
    )
    (tmp_path / "expirations.json").write_text("{}")
    (tmp_path / "torn.json").write_text("{")
    assert read_lease_files(tmp_path) == {"5b0c": (["limit-1"], "run-9")}
    assert read_lease_files(tmp_path / "missing") == {}
    assert read_lease_files(None) == {}


def test_the_monitor_is_stalled_after_n_intervals_without_a_tick_that_ran_to_the_end():
    cancelled = [Tick(f"t{i}", "CANCELLED", STARTED + 5 * i, "Deployment concurrency limit reached.") for i in range(4)]
    ok = monitor_health([Tick("ok", "COMPLETED", STARTED + 1)] + cancelled, STARTED, STARTED + 14, 5, 3)
    assert not ok.stalled
    stalled = monitor_health([Tick("ok", "COMPLETED", STARTED + 1)] + cancelled, STARTED, STARTED + 17, 5, 3)
    assert stalled.stalled and "no tick ran to the end for 16s" in stalled.summary
    assert '3 ticks CANCELLED ("Deployment concurrency limit reached.")' in stalled.summary


def test_a_fresh_start_gets_n_intervals_of_grace_and_escalated_ticks_count_as_ticks():
    assert not monitor_health([], STARTED, STARTED + 15, 5, 3).stalled
    assert monitor_health([], STARTED, STARTED + 16, 5, 3).stalled
    escalated = Tick("red", "FAILED", STARTED + 10, "Flow run encountered an exception: ClustersNeedAHuman: ...")
    assert not monitor_health([escalated], STARTED, STARTED + 20, 5, 3).stalled
    broken = Tick("broken", "FAILED", STARTED + 10, "Flow run encountered an exception: KeyError: 'x'")
    assert monitor_health([broken], STARTED, STARTED + 20, 5, 3).stalled


def test_why_no_tick_finished_says_so_when_none_started():
    assert "no tick was even started" in why_ticks_did_not_finish([])


def test_scheduled_runs_with_another_inventory_are_stale_a_triggered_recovery_of_this_one_is_not():
    current = {"monitor": {"config": "/etc/new.yaml"}, "recover": {"config": "/etc/new.yaml"}}
    runs = [
        ScheduledRun("1", "old-tick", "monitor", {"config": "/tmp/old.yaml"}),
        ScheduledRun("2", "new-tick", "monitor", {"config": "/etc/new.yaml"}),
        ScheduledRun("3", "triggered", "recover", {"config": "/etc/new.yaml", "cluster": "a"}),
        ScheduledRun("4", "old-trigger", "recover", {"config": "/tmp/old.yaml", "cluster": "gone"}),
        ScheduledRun("5", "not-ours", "other", {"config": "/x.yaml"}),
    ]
    assert [r.name for r in runs_with_stale_parameters(runs, current)] == ["old-tick", "old-trigger"]
