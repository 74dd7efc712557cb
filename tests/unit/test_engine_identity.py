"""The right Docker engine, or nothing: a cluster's engine is known by its ID, and another engine is not acted on.

The engine ID is given in the inventory or kept from the cluster's first look (<state_dir>/engines/); the
observation of an engine that is not the cluster's is a critical finding naming both IDs, and the plan does
nothing at all. Two clusters that select the same containers on one engine are refused at load.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from flink_runbook.inventory import DockerEngine, InventoryError, load_inventory
from flink_runbook.runbook.deciding.plan import plan_recovery
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.engine_identity import (
    EngineMismatch,
    engine_file,
    engine_mismatch,
    learn_engine_id,
    read_engine_id,
)
from flink_runbook.runbook.observing.observe import ContainersView

from .test_findings import CLUSTER, observed
from .test_recovery_plan import jm_container, tm_container, with_containers

ENGINE_A = "N6Y4:IW72:OKUZ:XW5D:I2YB:FRTD:RWC4:HPK5:DUI5:OENG:5YBC:TNRN"
ENGINE_B = "3f1b9c44-6a0e-4d5b-9a77-0c2f4e8d1b20"  # Docker 24 and later: a UUID


def cluster_data(name: str, containers: dict, docker: dict | None = None) -> dict:
    data = {"name": name, "rest": {"url": "http://127.0.0.1:8081"}, "containers": containers}
    return data | ({"docker": docker} if docker else {})


def load(tmp_path: Path, *clusters: dict):
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "clusters": list(clusters)}))
    return load_inventory(path)


def test_docker_engine_id_is_read_from_the_inventory_and_a_malformed_one_is_refused(tmp_path):
    (cluster,) = load(tmp_path, cluster_data("a", {"compose_project": "a"}, {"engine_id": ENGINE_A})).clusters
    assert cluster.docker.engine_id == ENGINE_A
    assert cluster.docker == DockerEngine()  # what it must be, not where: the local engine's client is shared
    with pytest.raises(InventoryError) as error:
        load(tmp_path, cluster_data("a", {"compose_project": "a"}, {"engine_id": "my laptop"}))
    message = str(error.value)
    assert str(tmp_path / "inventory.yaml") in message and "clusters[0].docker.engine_id" in message
    assert "'my laptop' is not a Docker engine ID" in message and "docker info" in message


@pytest.mark.parametrize(
    ("first", "second", "taken"),
    [
        ({"compose_project": "flink"}, {"compose_project": "flink"}, "compose project 'flink' service"),
        (
            {"compose_project": "flink"},
            {"names": {"jobmanager": ["jm-b"], "taskmanager": ["flink_taskmanager_1"]}},
            "container 'flink_taskmanager_1'",
        ),
        (
            {"names": {"jobmanager": ["jm-a"], "taskmanager": ["tm-1"]}},
            {"names": {"jobmanager": ["jm-b"], "taskmanager": ["tm-2", "tm-1"]}},
            "container 'tm-1'",
        ),
    ],
    ids=["same-compose-project", "a-name-compose-gives-its-container", "same-name"],
)
def test_two_clusters_selecting_the_same_containers_on_one_engine_are_refused_at_load(tmp_path, first, second, taken):
    with pytest.raises(InventoryError) as error:
        load(
            tmp_path,
            cluster_data("alpha", first),
            cluster_data("beta", second, {"host": "unix:///var/run/docker.sock"}),
        )
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'inventory.yaml'}: clusters[1].containers: {taken}"), message
    assert "cluster 'alpha' (clusters[0].containers" in message and "on the same Docker engine" in message


def test_the_same_selectors_on_different_engines_are_different_containers(tmp_path):
    same = {"compose_project": "flink"}
    by_host = load(tmp_path, cluster_data("a", same), cluster_data("b", same, {"host": "tcp://10.0.0.5:2375"}))
    assert len(by_host.clusters) == 2
    by_id = load(
        tmp_path, cluster_data("a", same, {"engine_id": ENGINE_A}), cluster_data("b", same, {"engine_id": ENGINE_B})
    )
    assert len(by_id.clusters) == 2
    other_service = {"compose_project": "flink", "jobmanager_service": "jm-b", "taskmanager_service": "tm-b"}
    assert len(load(tmp_path, cluster_data("a", same), cluster_data("b", other_service)).clusters) == 2


def test_the_first_look_is_kept_and_another_engine_is_a_mismatch_naming_both(tmp_path):
    cluster = dataclasses.replace(CLUSTER, state_dir=tmp_path / "state")
    assert engine_mismatch(cluster, ENGINE_A) is None  # the first look: learned
    kept = json.loads(engine_file(cluster.state_dir, cluster.name).read_text())
    assert kept["engine_id"] == ENGINE_A and kept["docker_host"] == "DOCKER_HOST or the local socket"
    assert engine_mismatch(cluster, ENGINE_A) is None
    mismatch = engine_mismatch(cluster, ENGINE_B)
    assert mismatch == EngineMismatch(
        cluster.name,
        "DOCKER_HOST or the local socket",
        ENGINE_B,
        ENGINE_A,
        f"seen at its first look and kept in {engine_file(cluster.state_dir, cluster.name)}",
    )
    assert ENGINE_A in mismatch.describe() and ENGINE_B in mismatch.describe()
    # Of two first looks at once, the first one kept wins; the other is judged by it.
    assert learn_engine_id(cluster.state_dir, cluster.name, ENGINE_B, "elsewhere") == ENGINE_A
    assert read_engine_id(cluster.state_dir, cluster.name) == ENGINE_A
    assert sorted(p.name for p in engine_file(cluster.state_dir, cluster.name).parent.iterdir()) == [
        f"{cluster.name}.json"
    ]  # no partial file left behind


def test_the_inventorys_engine_id_wins_and_an_unreadable_kept_one_is_not_acted_on(tmp_path):
    cluster = dataclasses.replace(CLUSTER, state_dir=tmp_path / "state")
    declared = dataclasses.replace(cluster, docker=DockerEngine(engine_id=ENGINE_B))
    assert engine_mismatch(declared, ENGINE_B) is None
    assert not engine_file(cluster.state_dir, cluster.name).exists()  # nothing learned when it is given
    assert engine_mismatch(declared, ENGINE_A).source == "docker.engine_id in the inventory"

    path = engine_file(cluster.state_dir, cluster.name)
    path.parent.mkdir(parents=True)
    path.write_text('{"engine_id": ')  # cut short
    mismatch = engine_mismatch(cluster, ENGINE_A)
    assert mismatch is not None and str(path) in mismatch.source and "remove it" in mismatch.source


def test_without_a_writable_state_dir_nothing_is_learned_and_nothing_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("")
    cluster = dataclasses.replace(CLUSTER, state_dir=tmp_path / "a-file" / "state")
    assert engine_mismatch(cluster, ENGINE_A) is None


def test_another_engine_is_a_critical_finding_and_nothing_at_all_is_planned(tmp_path):
    # What would otherwise be restarted and resubmitted (test_recovery_plan: the runbook incident plan).
    seen = with_containers(observed("1.20.3", "failed-heartbeat-timeout"), jm_container(), tm_container("exited"))
    assert plan_recovery(CLUSTER, diagnose(CLUSTER, seen)).actions
    where = "unix:///run/other.sock"
    mismatch = EngineMismatch(CLUSTER.name, where, ENGINE_B, ENGINE_A, "seen at its first look and kept in x")
    elsewhere = dataclasses.replace(
        seen, containers=ContainersView(error=mismatch.describe(), engine_mismatch=mismatch)
    )
    diagnosis = diagnose(CLUSTER, elsewhere)
    (finding,) = [f for f in diagnosis.findings if f.code == "DOCKER_ENGINE_MISMATCH"]
    assert finding.severity == "critical" and not diagnosis.healthy
    for said in (ENGINE_A, ENGINE_B, where):
        assert said in finding.summary and said in finding.evidence
    assert "DOCKER_UNREACHABLE" not in {f.code for f in diagnosis.findings}
    plan = plan_recovery(CLUSTER, diagnosis)
    assert plan.actions == () and not plan.observe_again
    (refusal,) = plan.refusals
    assert ENGINE_A in refusal and ENGINE_B in refusal and where in refusal
