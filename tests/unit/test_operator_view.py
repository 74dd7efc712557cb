"""The operator's view, pure parts: which steps need a human, what the channel hears, the timeline,
the incidents kept, and `status`. Observations are Flink's answers recorded from 1.20.3 (tests/fixtures/rest)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from flink_runbook.inventory import InventoryError, JobSpec, load_inventory
from flink_runbook.runbook.deciding.approval import (
    ApprovalDecision,
    approval_request,
    needs_approval,
    not_approved_refusal,
    risky_steps,
    unanswered,
)
from flink_runbook.runbook.deciding.guard import Escalation, RecoveryRun
from flink_runbook.runbook.deciding.plan import plan_recovery
from flink_runbook.runbook.keeping.incidents import INCIDENTS_KEPT, incident_row, with_incident
from flink_runbook.runbook.model import ActionRecord, JobRecord, Milestone, RecoveryResult, RecoveryStatus, StepStatus
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.observe import JobView
from flink_runbook.runbook.reporting.notices import (
    approval_needed_notice,
    recovery_outcome_notice,
    recovery_started_notice,
)
from flink_runbook.runbook.reporting.recovery_report import recovery_report
from flink_runbook.runbook.reporting.status import cluster_status, recovery_in_progress, status_lines
from flink_runbook.runbook.reporting.timeline_chart import (
    DONE_COLOUR,
    INK,
    MILESTONE_GID,
    draw_timeline,
    svg_data_uri,
    timeline_svg,
)

from .test_findings import CLUSTER, observed
from .test_recovery_plan import jm_container, tm_container, unreachable, with_containers


def incident_plan():
    seen = with_containers(observed("1.20.3", "failed-heartbeat-timeout"), jm_container(), tm_container("exited"))
    diagnosis = diagnose(CLUSTER, seen)
    return diagnosis, plan_recovery(CLUSTER, diagnosis)


def test_the_runbooks_own_fix_is_safe_alone_and_always_asks_for_every_plan():
    diagnosis, plan = incident_plan()  # restart a dead TaskManager, resubmit from the newest checkpoint
    assert risky_steps(plan) == ()
    assert not needs_approval("risky", plan, ())
    assert needs_approval("always", plan, ()) and not needs_approval("never", plan, ())
    assert not needs_approval("always", dataclasses.replace(plan, actions=()), ())  # nothing to do: nobody asked


def test_a_fresh_start_a_stopped_jobmanager_and_an_escalation_need_a_human():
    seen = dataclasses.replace(
        observed("1.20.3", "failed-heartbeat-timeout"), jobs=(JobView(name="realtime-cdc-demo", info=None),)
    )
    fresh = dataclasses.replace(CLUSTER, jobs=(JobSpec(name="realtime-cdc-demo", no_checkpoint_policy="fresh"),))
    plan = plan_recovery(fresh, diagnose(fresh, seen), {})
    (risk,) = risky_steps(plan)
    assert "FRESH" in risk and needs_approval("risky", plan, (risk,))
    stopped = plan_recovery(CLUSTER, diagnose(CLUSTER, unreachable("unreachable", jm_container("exited"))))
    assert "starts the stopped JobManager container jm" in risky_steps(stopped)[0]
    paused = plan_recovery(CLUSTER, diagnose(CLUSTER, unreachable("unreachable", jm_container("paused"))))
    assert [a.action for a in paused.actions] == ["start_jobmanager"] and risky_steps(paused) == ()  # an unpause
    _, safe = incident_plan()
    assert "escalated (3 recoveries" in risky_steps(safe, "3 recoveries within 3600s")[0]


def test_the_question_shows_the_plan_the_evidence_and_what_changes():
    diagnosis, plan = incident_plan()
    text = approval_request(CLUSTER.name, plan, diagnosis, ("starts job x FRESH",), 600)
    assert "TASKMANAGER_HEARTBEAT_TIMEOUT" in text and "| restart_taskmanagers | tm |" in text
    assert "checkpoint " in text and "starts job x FRESH" in text and "600 s it counts as rejected" in text


def result_of_a_recovery() -> RecoveryResult:
    t0 = 1_795_500_000.0
    steps = [
        ActionRecord("restart_taskmanagers", "tm", "exited", StepStatus.DONE, "x", 3.2, started_s=t0 + 2),
        ActionRecord("resubmit_job", "cdc", "FAILED", StepStatus.DONE, "x", 1.0, started_s=t0 + 9),
        ActionRecord("verify_stability", "c", "15s window", StepStatus.DONE, "x", 15.0, started_s=t0 + 20),
    ]
    return RecoveryResult(
        cluster="prod-cdc", status=RecoveryStatus.RECOVERED, actions=steps,
        jobs=[JobRecord("cdc", "old", "new", "file:/data/checkpoints/old/chk-7")],
        findings_before=[{"code": "TASKMANAGER_HEARTBEAT_TIMEOUT", "severity": "critical", "summary": "lost"}],
        milestones=[Milestone("job cdc failed (Flink's exception history)", t0), Milestone("fault observed", t0 + 1),
                    Milestone("job cdc RUNNING", t0 + 12), Milestone("recovered (verified)", t0 + 35)],
        mttr_s=35.0, started_at="2026-12-01T03:00:01+00:00", duration_s=34.0, run_url="http://ui/runs/flow-run/1",
    )


def test_the_report_has_a_timeline_with_times_durations_and_a_chart():
    result = result_of_a_recovery()
    svg = timeline_svg(result)
    assert svg.lstrip().startswith("<?xml") and DONE_COLOUR in svg.lower() and "MTTR 35.0s" in svg
    report = recovery_report(result, svg_data_uri(svg))
    assert "![Timeline of the recovery of prod-cdc](data:image/svg+xml;base64," in report
    assert "MTTR): **35.0s**" in report
    rows = [line for line in report.splitlines() if re.match(r"\| \d\d:\d\d:\d\d\.\d{3} \|", line)]
    assert [r.split("|")[2].strip() for r in rows] == ["+0.0s", "+1.0s", "+2.0s", "+9.0s", "+12.0s", "+20.0s", "+35.0s"]
    assert "| +2.0s | 3.2s | restart_taskmanagers tm |" in report
    assert timeline_svg(dataclasses.replace(result, actions=[])) is None  # a run that did nothing: no chart


def test_the_reports_long_reasons_go_below_its_table_where_nothing_cuts_them():
    why = "the JobManager knows no job realtime-cdc-demo: it restarted without high availability " * 2
    found = "RUNNING, restored from chk-7, no exception since, a new checkpoint completed within 4.1s"
    steps = [ActionRecord("resubmit_job", "cdc", why, StepStatus.DONE, "x", 1.0, detail=found, started_s=1_795_500_009),
             ActionRecord("verify_job", "cdc", "after the resubmit", StepStatus.SKIPPED)]
    report = recovery_report(dataclasses.replace(result_of_a_recovery(), actions=steps))
    table = [line for line in report.split("## Timeline")[1].split("## TaskManagers")[0].splitlines()
             if line.startswith("|")]
    assert "| 06:00:09.000 | +9.0s | 1.0s | resubmit_job cdc | done |" in table
    assert "| | | | verify_job cdc | skipped |" in table
    assert max(len(line) for line in table) < 100 and why.strip() not in "".join(table)
    assert f"- +9.0s **resubmit_job cdc**: {why}; done: {found}" in report
    assert "- **verify_job cdc**: after the resubmit" in report


def a_dense_recovery() -> RecoveryResult:
    """Two jobs whose milestones come within a fraction of a second of each other, long names, a failed step."""
    t0 = 1_795_500_000.0
    steps = [
        ActionRecord("start_jobmanager", "frtest-1203-b6d919_jobmanager_1", "exited", StepStatus.DONE, "x", 10.8,
                     started_s=t0 + 4.2),
        ActionRecord("wait_for_taskmanagers", "1 TaskManager(s)", "slots", StepStatus.DONE, "x", 0.1,
                     started_s=t0 + 15),
        ActionRecord("resubmit_job", "realtime-cdc-demo", "FAILED", StepStatus.DONE, "x", 1.5, started_s=t0 + 15.6),
        ActionRecord("resubmit_job", "orders-enricher", "FAILED", StepStatus.FAILED, "x", 1.2, started_s=t0 + 15.7),
        ActionRecord("verify_stability", "frtest-1203-b6d919", "window", StepStatus.DONE, "x", 5.0, started_s=t0 + 21),
    ]
    milestones = [Milestone("job realtime-cdc-demo failed (Flink's exception history)", t0 - 0.4),
                  Milestone("fault observed", t0), Milestone("job realtime-cdc-demo RUNNING", t0 + 17.5),
                  Milestone("job orders-enricher RUNNING", t0 + 17.6),
                  Milestone("job realtime-cdc-demo first new checkpoint", t0 + 20.7),
                  Milestone("job orders-enricher first new checkpoint", t0 + 20.9),
                  Milestone("recovered (verified)", t0 + 25.8)]
    return dataclasses.replace(result_of_a_recovery(), cluster="frtest-1203-b6d919", actions=steps,
                               milestones=milestones, mttr_s=26.2)


def test_the_charts_milestone_labels_do_not_overlap_and_stay_on_the_card():
    from matplotlib.figure import Figure

    figure = draw_timeline(Figure(), a_dense_recovery())
    figure.draw_without_rendering()  # the text extents of the final layout
    labels = [t for axes in figure.axes for t in axes.texts if t.get_gid() == MILESTONE_GID]
    assert len(labels) == 7
    boxes = [label.get_window_extent() for label in labels]
    card = figure.bbox
    for i, box in enumerate(boxes):
        assert card.x0 <= box.x0 and box.x1 <= card.x1 and card.y0 <= box.y0 and box.y1 <= card.y1, labels[i]
        for j in range(i):
            assert not box.overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
    names = [t.get_window_extent() for t in figure.axes[0].get_yticklabels()]
    assert min(box.x0 for box in names) >= card.x0, "a step's name is cut at the card's edge"
    assert names and all(not box.overlaps(name) for box in boxes for name in names)


def test_the_chart_is_a_light_card_with_dark_text_on_any_theme():
    svg = timeline_svg(a_dense_recovery())
    assert 'style="fill: #ffffff"' in svg  # the card: opaque, not the page's colour
    from matplotlib.figure import Figure

    figure = draw_timeline(Figure(), a_dense_recovery())
    inks = {t.get_color() for axes in figure.axes for t in axes.texts if t.get_gid() != MILESTONE_GID}
    inks |= {t.get_color() for t in figure.texts}
    assert inks == {INK}


def test_notices_are_short_and_carry_cluster_codes_job_restore_point_and_link():
    diagnosis, plan = incident_plan()
    started = recovery_started_notice("prod-cdc", diagnosis, plan, "http://ui/runs/flow-run/1")
    assert "TASKMANAGER_HEARTBEAT_TIMEOUT" in started.body and "restore from checkpoint" in started.body
    assert started.body.endswith("Run: http://ui/runs/flow-run/1") and len(started.body) < 1200
    done = recovery_outcome_notice(result_of_a_recovery())
    assert done.event == "recovered" and "MTTR 35.0s" in done.subject and "chk-7" in done.body
    failed = recovery_outcome_notice(dataclasses.replace(result_of_a_recovery(), status=RecoveryStatus.REFUSED,
                                                         refusals=["not approved by nobody"]))
    assert failed.event == "recovery_failed" and "Refused: not approved by nobody" in failed.body
    assert recovery_outcome_notice(dataclasses.replace(result_of_a_recovery(), status=RecoveryStatus.HEALTHY)) is None
    asked = approval_needed_notice("prod-cdc", diagnosis, plan, ("starts job x FRESH",), 900, "http://ui/r")
    assert "Risky: starts job x FRESH" in asked.body and "900s" in asked.body and "http://ui/r" in asked.body


def test_incidents_keep_the_newest_few_and_skip_runs_that_were_none():
    row = incident_row(result_of_a_recovery())
    assert row["findings"] == "TASKMANAGER_HEARTBEAT_TIMEOUT" and row["mttr_s"] == 35.0
    assert row["action"] == "restart_taskmanagers, resubmit_job, verify_stability"
    assert "chk-7" in row["restore_point"] and row["result"] == "recovered"
    assert incident_row(dataclasses.replace(result_of_a_recovery(), status=RecoveryStatus.SUPERSEDED)) is None
    rows: list[dict] = []
    for n in range(INCIDENTS_KEPT + 3):
        rows = with_incident(rows, {**row, "when": str(n)})
    assert len(rows) == INCIDENTS_KEPT and rows[0]["when"] == str(INCIDENTS_KEPT + 2)


def test_the_last_incident_lists_its_steps_in_the_order_they_ran():
    t0 = 1_795_500_000.0
    ran = [  # not in alphabetical order, and one step ran twice
        ActionRecord("unpause_taskmanagers", "tm", "paused", StepStatus.DONE, "x", 0.3, started_s=t0 + 1),
        ActionRecord("restart_taskmanagers", "tm", "not registered", StepStatus.DONE, "x", 3.0, started_s=t0 + 9),
        ActionRecord("resubmit_job", "cdc", "FAILED", StepStatus.FAILED, "x", 1.0, started_s=t0 + 14),
        ActionRecord("verify_job", "cdc", "not attempted", StepStatus.SKIPPED),
        ActionRecord("unpause_taskmanagers", "tm2", "paused", StepStatus.DONE, "x", 0.2, started_s=t0 + 2),
    ]
    row = incident_row(dataclasses.replace(result_of_a_recovery(), status=RecoveryStatus.FAILED, actions=ran))
    assert row["action"] == "unpause_taskmanagers, restart_taskmanagers, resubmit_job, verify_job"
    diagnosis, _ = incident_plan()
    shown = "\n".join(status_lines([cluster_status(CLUSTER, diagnosis, "", [], None, [row])]))
    assert "-> unpause_taskmanagers, restart_taskmanagers, resubmit_job, verify_job: failed" in shown


def test_an_unanswered_approval_says_the_timeout_not_who():
    timed_out = unanswered(6, 6.3)
    refusal = not_approved_refusal(timed_out)
    assert refusal.startswith("not approved: no answer within 6 s; nothing was changed"), refusal
    assert "nobody" not in refusal
    assert not_approved_refusal(ApprovalDecision(False, "a human through Prefect", "not now")).startswith(
        "not approved by a human through Prefect: not now;"
    )
    report = recovery_report(dataclasses.replace(result_of_a_recovery(), status=RecoveryStatus.REFUSED,
                                                 approval=timed_out.to_dict(), refusals=[refusal]))
    assert "Approval: NOT approved: no answer within 6 s (after 6.3s)." in report
    diagnosis, _ = incident_plan()
    held = cluster_status(CLUSTER, diagnosis, "", [], Escalation(0, f"recovery {refusal}"), [])
    assert "ESCALATED     recovery not approved: no answer within 6 s;" in "\n".join(status_lines([held]))


def test_status_shows_health_jobs_checkpoint_age_guard_and_last_incident():
    seen = observed("1.20.3", "healthy")
    healthy = cluster_status(CLUSTER, diagnose(CLUSTER, seen), "", [], None, [incident_row(result_of_a_recovery())],
                             now=seen.observed_at_ms / 1000)
    text = "\n".join(status_lines([healthy]))
    assert "healthy" in text and "job realtime-cdc-demo" in text and "RUNNING" in text
    assert re.search(r"last checkpoint \d+s ago", text) and "MTTR 35.0s" in text and "\033[" not in text
    assert "\033[32m" in "\n".join(status_lines([healthy], colour=True))
    diagnosis, _ = incident_plan()
    now = diagnosis.observation.observed_at_ms / 1000
    runs = [RecoveryRun("r1", "COMPLETED", now - 100, now - 30)]
    cooling = cluster_status(CLUSTER, diagnosis, "", runs, None, [], now=now)
    assert cooling.health == "UNHEALTHY" and cooling.guard.startswith("wait: cooldown") and cooling.recoveries_left == 2
    held = cluster_status(CLUSTER, diagnosis, "", runs, Escalation(now - 5, "recovery not approved"), [], now=now)
    assert held.escalated == "recovery not approved" and "ESCALATED" in "\n".join(status_lines([held]))
    assert cooling.recovering is None and "RECOVERING" not in "\n".join(status_lines([cooling]))
    blind = cluster_status(CLUSTER, None, "Docker engine did not answer", [], None, [])
    assert blind.health == "NOT CHECKED" and "Docker engine did not answer" in "\n".join(status_lines([blind]))


def test_status_shows_a_recovery_that_is_running_even_while_the_cluster_already_looks_healthy():
    seen = observed("1.20.3", "healthy")
    now = seen.observed_at_ms / 1000
    runs = [RecoveryRun("recover-c-early", "COMPLETED", now - 900, now - 850),
            RecoveryRun("recover-c-queued", "SCHEDULED", now - 3),
            RecoveryRun("recover-c-acting", "RUNNING", now - 14, started_at=now - 12)]
    status = cluster_status(CLUSTER, diagnose(CLUSTER, seen), "", runs, None, [], now=now)
    assert status.health == "healthy"
    assert status.recovering == "recover-c-acting running for 12s (1 more queued)"
    assert "RECOVERING    recover-c-acting running for 12s" in "\n".join(status_lines([status]))
    assert status.to_dict()["recovering"] == status.recovering
    blind = cluster_status(CLUSTER, None, "Docker engine did not answer", runs[:2], None, [], now=now)
    assert blind.recovering == "recover-c-queued waiting to start for 3s"


def test_status_does_not_show_a_dead_or_never_started_run_as_a_recovery_in_progress():
    now = 10_000.0
    dead = RecoveryRun("recover-c-killed", "RUNNING", now - 3000, id="dead", started_at=now - 3000)
    live = RecoveryRun("recover-c-live", "RUNNING", now - 20, id="live", started_at=now - 20)
    said = recovery_in_progress([dead, live], now, gone=frozenset({"dead"}))
    # The killed run (SIGKILLed: Prefect still shows it RUNNING, it holds no lock) neither hides the live one
    # nor passes for progress.
    assert said.startswith("recover-c-live running for 20s;") and "recover-c-killed shows RUNNING but its " \
        "process is gone" in said
    # Two live runs: the oldest holds the lock and acts, the other waits behind it.
    queued = RecoveryRun("recover-c-next", "RUNNING", now - 5, id="next", started_at=now - 5)
    assert recovery_in_progress([queued, live], now) == "recover-c-live running for 20s (1 more queued)"
    # A run nothing picks up is not a recovery in progress: it says what to look at.
    late = RecoveryRun("recover-c-late", "SCHEDULED", now - 600)
    assert recovery_in_progress([late], now) == (
        "1 run(s) not started after 600s (recover-c-late): is `flink-runbook serve` (or a worker of the recover "
        "deployment) running?")
    paused = RecoveryRun("recover-c-asks", "PAUSED", now - 50, started_at=now - 40)
    assert recovery_in_progress([paused], now).startswith("recover-c-asks waits for a person's approval (40s)")
    assert recovery_in_progress([RecoveryRun("r", "COMPLETED", now - 50, now - 10)], now) is None


@pytest.mark.parametrize(
    "cluster_keys, expected",
    [
        ({"approval": "sometimes"}, "clusters[0].approval: 'sometimes' is not one of: never, risky, always"),
        ({"approval_timeout_s": 0}, "clusters[0].approval_timeout_s: must be at least 1"),
        ({"notifications": {"blocks": ["oncall"]}}, "clusters[0].notifications.blocks[0]: 'oncall' is not a Prefect"),
        ({"notifications": {"events": ["paged"]}}, "clusters[0].notifications.events[0]: 'paged' is not one of"),
    ],
)
def test_bad_approval_and_notification_settings_are_named(tmp_path, cluster_keys, expected):
    data = {"clusters": [{"name": "c", "rest": {"url": "http://127.0.0.1:8081"}, "containers": {"compose_project": "p"},
                          **cluster_keys}]}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value).startswith(f"{path}: {expected}")


def test_a_clusters_notifications_override_the_top_levels_key_by_key(tmp_path):
    data = {
        "notifications": {"blocks": ["slack-webhook/oncall"], "events": ["recovered", "escalated"]},
        "clusters": [
            {"name": "a", "rest": {"url": "http://127.0.0.1:8081"}, "containers": {"compose_project": "p"}},
            {"name": "b", "rest": {"url": "http://127.0.0.1:8082"}, "containers": {"compose_project": "q"},
             "notifications": {"blocks": ["custom-webhook/pager"]}, "approval": "always"},
        ],
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    a, b = load_inventory(path).clusters
    assert a.notifications.blocks == ("slack-webhook/oncall",) and a.approval == "risky"
    assert b.notifications.blocks == ("custom-webhook/pager",) and b.notifications.events == {"recovered", "escalated"}
    assert b.approval == "always" and b.approval_timeout_s == 900


def test_the_cli_gate_approves_with_yes_asks_a_terminal_and_refuses_without_one(monkeypatch, capsys):
    from flink_runbook.flows.approval import ask_for_approval

    diagnosis, plan = incident_plan()
    risks = ("starts job x FRESH",)
    assert ask_for_approval(CLUSTER, plan, diagnosis, risks, "yes", 0).approved
    refused = ask_for_approval(CLUSTER, plan, diagnosis, risks, "refuse", 0)
    assert not refused.approved and not refused.asked and "--yes approves" in refused.reason
    answers = iter(["y", "TaskManager host replaced"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    said = ask_for_approval(CLUSTER, plan, diagnosis, risks, "prompt", 0)
    assert said.approved and said.asked and said.reason == "TaskManager host replaced"
    assert "starts job x FRESH" in capsys.readouterr().err  # the question was shown first
    monkeypatch.setattr("builtins.input", lambda prompt="": "")
    assert not ask_for_approval(CLUSTER, plan, diagnosis, risks, "prompt", 0).approved  # Enter alone is a no
