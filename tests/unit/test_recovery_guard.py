"""The monitor's guard rails: when it may start a recovery, when it waits, escalates, resumes."""

from __future__ import annotations

from flink_runbook.inventory import MonitorSettings
from flink_runbook.runbook.deciding.guard import Escalation, RecoveryRun, decide_recovery, recovers_cluster

SETTINGS = MonitorSettings(cooldown_s=60, max_recoveries=2, window_s=600, resume_after_healthy_s=120)
NOW = 10_000.0


def ended(name: str, ago: float, state: str = "COMPLETED") -> RecoveryRun:
    return RecoveryRun(name=name, state=state, expected_start=NOW - ago - 30, ended_at=NOW - ago)


def test_healthy_cluster_needs_nothing():
    assert decide_recovery(True, [ended("r1", 100)], None, SETTINGS, NOW).action == "none"


def test_unhealthy_cluster_with_no_history_is_recovered():
    decision = decide_recovery(False, [], None, SETTINGS, NOW)
    assert decision.action == "recover"
    assert "1 of at most 2" in decision.reason


def test_no_second_recovery_while_one_is_scheduled_or_running():
    for state in ("SCHEDULED", "PENDING", "RUNNING"):
        running = RecoveryRun(name="brave-fox", state=state, expected_start=NOW - 5)
        decision = decide_recovery(False, [running], None, SETTINGS, NOW)
        assert decision.action == "wait"
        assert "brave-fox" in decision.reason


def test_cooldown_after_the_last_recovery_ended():
    assert decide_recovery(False, [ended("r1", 30)], None, SETTINGS, NOW).action == "wait"
    assert decide_recovery(False, [ended("r1", 61)], None, SETTINGS, NOW).action == "recover"


def test_escalates_at_the_flap_limit_within_the_window():
    runs = [ended("r1", 300, "FAILED"), ended("r2", 100, "FAILED")]
    decision = decide_recovery(False, runs, None, SETTINGS, NOW)
    assert decision.action == "escalate"
    assert decision.escalation is not None and decision.escalation.escalated_at == NOW
    assert "2 recoveries within 600s" in decision.reason


def test_runs_outside_the_window_and_rejected_runs_do_not_count():
    runs = [ended("old", 900, "FAILED"), ended("rejected", 100, "CANCELLED"), ended("r", 100, "FAILED")]
    assert decide_recovery(False, runs, None, SETTINGS, NOW).action == "recover"


def test_escalated_cluster_is_held_while_unhealthy():
    escalation = Escalation(escalated_at=NOW - 50, reason="2 recoveries", healthy_since=NOW - 10)
    decision = decide_recovery(False, [], escalation, SETTINGS, NOW)
    assert decision.action == "hold"
    assert decision.escalation is not None and decision.escalation.healthy_since is None


def test_escalated_cluster_resumes_only_after_being_healthy_long_enough():
    escalation = Escalation(escalated_at=NOW - 500, reason="2 recoveries")
    first = decide_recovery(True, [], escalation, SETTINGS, NOW)
    assert first.action == "hold" and first.escalation is not None
    assert first.escalation.healthy_since == NOW
    later = decide_recovery(True, [], first.escalation, SETTINGS, NOW + 119)
    assert later.action == "hold"
    resumed = decide_recovery(True, [], first.escalation, SETTINGS, NOW + 120)
    assert resumed.action == "resume" and resumed.escalation is None


def test_escalation_round_trips_through_its_stored_form():
    escalation = Escalation(escalated_at=NOW, reason="why", healthy_since=NOW + 1)
    assert Escalation.from_dict(escalation.to_dict()) == escalation


def test_which_recover_runs_count_for_a_cluster(tmp_path):
    mine, other = tmp_path / "mine.yaml", tmp_path / "other.yaml"
    assert recovers_cluster({"config": str(other), "cluster": "a"}, "a", mine)
    assert not recovers_cluster({"config": str(mine), "cluster": "b"}, "a", mine)
    # All clusters of my inventory, asked for explicitly; naming none without asking for all refuses.
    assert recovers_cluster({"config": str(mine), "cluster": None, "all_clusters": True}, "a", mine)
    assert not recovers_cluster({"config": str(mine), "cluster": None}, "a", mine)
    assert not recovers_cluster({"config": str(other)}, "a", mine)  # all clusters of another inventory
    assert not recovers_cluster({"config": str(mine), "cluster": "a", "dry_run": True}, "a", mine)


def test_a_recovery_cut_short_by_a_dead_process_is_finished_at_once_but_counts_toward_the_flap_limit():
    # Marked Crashed at restart: no cooldown to sit out, the next tick recovers...
    assert decide_recovery(False, [ended("killed", 5, "CRASHED")], None, SETTINGS, NOW).action == "recover"
    # ...but a cluster whose recoveries keep dying still escalates.
    runs = [ended("killed", 300, "CRASHED"), ended("killed-again", 5, "CRASHED")]
    assert decide_recovery(False, runs, None, SETTINGS, NOW).action == "escalate"


def test_runs_that_did_nothing_spend_no_flap_budget_and_start_no_cooldown():
    """Safety II case 8: a burst of duplicate events (runs that found the cluster healthy, were held by the
    cooldown, or timed out waiting for the lock) must not turn the next real fault into an escalation."""
    from dataclasses import replace

    from flink_runbook.runbook.deciding.guard import NOTHING_DONE

    idle = [replace(ended(f"idle{i}", 10 + i, state), state_name=NOTHING_DONE)
            for i, state in enumerate(("COMPLETED", "FAILED", "FAILED", "COMPLETED"))]
    decision = decide_recovery(False, idle, None, SETTINGS, NOW)
    # The old guard counted all four: "escalate" (4 >= 2), and "wait" for a cooldown from a run 10 s ago.
    assert decision.action == "recover" and decision.recent_recoveries == 0, decision
    acted = [*idle, ended("r1", 300, "FAILED"), ended("r2", 100, "FAILED")]
    assert decide_recovery(False, acted, None, SETTINGS, NOW).action == "escalate"


def test_a_run_holding_the_recovery_lock_does_not_wait_for_one_queued_behind_it():
    # Seen in CI (Flink 2.2.0): the monitor's trigger and the fault watcher each started a run; the first to
    # take the lock deferred to the second, still queued for the lock, and ended "superseded" on a broken cluster.
    queued = RecoveryRun(name="pistachio-moose", state="RUNNING", expected_start=NOW - 1)
    assert decide_recovery(False, [queued], None, SETTINGS, NOW).action == "wait"
    assert decide_recovery(False, [queued], None, SETTINGS, NOW, holding_the_lock=True).action == "recover"
    # The rest of the guard rails still hold under the lock.
    cooling = [queued, ended("r1", 30)]
    assert decide_recovery(False, cooling, None, SETTINGS, NOW, holding_the_lock=True).action == "wait"
