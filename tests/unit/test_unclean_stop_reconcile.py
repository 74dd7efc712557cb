"""What the serving process frees at start after an unclean stop, and when it calls the monitor stalled (pure)."""

from __future__ import annotations

from flink_runbook.records.flow_runs import OpenRun, ScheduledRun, Tick
from flink_runbook.records.slots import Slots
from flink_runbook.serving.reconcile import (
    SlotCount,
    recovery_lock_counts,
    runs_with_stale_parameters,
    runs_without_a_process,
    slots_to_lower,
)
from flink_runbook.serving.watchdog import monitor_health, why_ticks_did_not_finish

STARTED = 1_000.0


def run(name: str, state: str = "RUNNING", since: float = STARTED - 30, has_process: bool = False) -> OpenRun:
    return OpenRun(id=name, name=name, deployment_id="d", state=state, state_since=since, has_process=has_process)


def test_runs_opened_before_the_start_with_no_process_are_dead():
    runs = [run("dead"), run("pending-dead", "PENDING"), run("alive", has_process=True), run("new", since=STARTED + 1)]
    assert [r.name for r in runs_without_a_process(runs, STARTED)] == ["dead", "pending-dead"]


def test_slots_are_lowered_only_to_what_live_holders_hold():
    counts = [SlotCount("deployment:monitor", 1, 0), SlotCount("deployment:recover", 1, 1), SlotCount("x", 0, 0)]
    assert slots_to_lower(counts) == [("deployment:monitor", 1, 0)]


def test_a_recovery_lock_stays_held_while_a_recover_run_may_hold_it():
    # Open, or ended so recently that its lease may live on: Prefect's lease expiry frees it, not us.
    counts, left_alone = recovery_lock_counts([Slots("flink-recover-a", 1)], may_hold=["brave-fox"])
    assert counts == [] and "flink-recover-a stays held: recover run(s) brave-fox" in left_alone[0]


def test_a_recovery_lock_no_recover_run_can_hold_is_given_back():
    # Its lease was lost (a server's in-memory lease storage): nothing else would ever free the slot.
    counts, left_alone = recovery_lock_counts([Slots("flink-recover-a", 1)], may_hold=[])
    assert slots_to_lower(counts) == [("flink-recover-a", 1, 0)] and left_alone == []


def test_no_recovery_lock_is_given_back_before_the_server_could_revoke_the_leases_it_kept_while_down():
    # Durable leases outlive a server stop; once it is up again, Prefect revokes the expired ones itself.
    # A decrement of ours before then would make two, and a recovery that took the slot between could be joined.
    counts, left_alone = recovery_lock_counts([Slots("flink-recover-a", 1)], may_hold=[], watched_s=5)
    assert counts == [] and "flink-recover-a stays held: Prefect revokes a lease" in left_alone[0]
    counts, left_alone = recovery_lock_counts([Slots("flink-recover-a", 1)], may_hold=[], watched_s=600)
    assert slots_to_lower(counts) == [("flink-recover-a", 1, 0)] and left_alone == []


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
