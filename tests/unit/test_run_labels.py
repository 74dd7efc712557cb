"""Flow runs named and tagged for what they do, on which cluster, through which door (pure part)."""

from __future__ import annotations

from flink_runbook.runbook.reporting.run_labels import (
    CLUSTER_TAGS_AT_MOST,
    Door,
    clusters_subject,
    door_of,
    run_name,
    run_tags,
)

AT = 1_796_531_412.0  # 2026-12-06T04:30:12Z


def test_a_run_is_named_for_its_flow_its_cluster_and_its_utc_time_in_one_word():
    named = run_name("recover", clusters_subject(["realtime-pipeline"]), AT)
    assert named == "recover-realtime-pipeline-2026-12-06T04:30:12Z"
    assert run_name("monitor", clusters_subject(["a", "b", "c"]), AT) == "monitor-3-clusters-2026-12-06T04:30:12Z"
    assert run_name("recover", clusters_subject([]), AT) == "recover-2026-12-06T04:30:12Z"  # inventory unreadable
    assert " " not in run_name("audit", "a b", AT)


def test_the_door_is_told_or_read_from_prefects_record_of_the_run():
    assert door_of(Door.WATCHER, None, None, False) == Door.WATCHER
    assert door_of(None, None, None, False) == Door.CLI
    assert door_of(None, "d-1", "AUTOMATION", False) == Door.MONITOR  # the recover trigger's run
    assert door_of(None, "d-1", None, True) == Door.SCHEDULE
    assert door_of(None, "d-1", None, False) == Door.MANUAL  # Run in the UI, or the API


def test_tags_name_the_tool_each_cluster_and_the_door():
    assert run_tags(["prod"], Door.WATCHER, "fault:container_paused") == [
        "flink-runbook", "cluster:prod", "trigger:watcher", "fault:container_paused"
    ]
    fleet = [f"c{i}" for i in range(CLUSTER_TAGS_AT_MOST + 1)]
    assert run_tags(fleet, Door.SCHEDULE) == ["flink-runbook", "trigger:schedule"]  # a fleet is counted in the name
