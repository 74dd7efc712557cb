"""`flink-runbook init`'s file: what was found becomes a valid inventory, each decision and guess marked, each
gap said (flink_runbook.inventory.found and .starting; the Docker and Flink answers below are a demo stack's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_runbook.cli.main import main
from flink_runbook.inventory import load_inventory
from flink_runbook.inventory.found import (
    FoundCluster,
    FoundJob,
    checkpoint_dir_setting,
    cluster_name,
    host_side,
    jar_of,
    local_path,
    mounted_config_file,
    publishes,
    same_cluster_unproven,
    taskmanager_service,
)
from flink_runbook.inventory.starting import starting_inventory

# docker inspect's Mounts of a demo stack's JobManager (Flink 1.20.3).
MOUNTS = [
    {"Type": "bind", "Source": "/srv/stack/docker/jobmanager/flink-conf.yaml",
     "Destination": "/opt/flink/conf-mounted/flink-conf.yaml", "RW": False},
    {"Type": "bind", "Source": "/srv/data", "Destination": "/data", "RW": True},
]
# GET /jars on it.
JARS = [{"id": "fc16_demo-job.jar", "name": "demo-job.jar", "uploaded": 1,
         "entry": [{"name": "flinkrunbook.demo.SequenceToCsvJob", "description": None}]}]

DEMO_JOB = FoundJob(
    name="realtime-cdc-demo", job_id="9b84de34d87af5c3bff50546ce19ec51", state="RUNNING", parallelism=1,
    checkpoint_dir="file:///data/checkpoints", checkpoint_dir_host="/srv/data/checkpoints", retained_on_cancel=True,
    jar_name="demo-job.jar", jar_path="demo-job.jar", entry_class="flinkrunbook.demo.SequenceToCsvJob",
    jar_guess="the only jar uploaded on the JobManager, its only entry class",
)
DEMO = FoundCluster(
    rest_url="http://127.0.0.1:8081", name="realtime-pipeline", flink_version="1.20.3", taskmanagers=1,
    slots_total=2, settings={"heartbeat.timeout": "5000", "restart-strategy.type": "fixed-delay"},
    compose_project="realtime-pipeline", jobmanager_service="jobmanager", taskmanager_service="taskmanager",
    compose_file="/srv/stack/docker-compose.yml", jobmanager_config="/srv/stack/docker/jobmanager/flink-conf.yaml",
    jobs=(DEMO_JOB,),
)


def written(found: FoundCluster, tmp_path: Path):
    result = starting_inventory(found, "flink-runbook init --rest http://127.0.0.1:8081")
    path = tmp_path / "inventory.yaml"
    path.write_text(result.text)
    return result, load_inventory(path)


def line_with(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(start))


def test_a_demo_stack_becomes_a_valid_inventory_with_its_decisions_marked(tmp_path):
    result, inventory = written(DEMO, tmp_path)
    (cluster,) = inventory.clusters
    assert (cluster.name, cluster.rest.url, cluster.expected_taskmanagers) == ("realtime-pipeline",
                                                                               "http://127.0.0.1:8081", 1)
    assert (cluster.containers.compose_project, cluster.containers.jobmanager_service,
            cluster.containers.taskmanager_service) == ("realtime-pipeline", "jobmanager", "taskmanager")
    (job,) = cluster.jobs
    assert job.jar == tmp_path / "demo-job.jar" and job.entry_class == "flinkrunbook.demo.SequenceToCsvJob"
    assert (job.checkpoint_dir.host, job.checkpoint_dir.container) == (Path("/srv/data/checkpoints"),
                                                                       "/data/checkpoints")
    assert job.parallelism == 1 and job.args == () and job.no_checkpoint_policy == "fail"
    assert cluster.audit.flink_version == "1.20.3" and cluster.audit.compose_file == Path(DEMO.compose_file)
    for key in ("approval:", "no_checkpoint_policy:", "on_canceled:", "args:", "restart_stopped:",
                "expected_taskmanagers:", "exclusive:", "# state_dir:"):
        assert "# DECIDE:" in line_with(result.text, key), key
    assert "# GUESSED:" in line_with(result.text, "entry_class:")
    assert "heartbeat.timeout 5000" in result.text and "Flink 1.20.3" in result.text
    assert result.open_points == ("job realtime-cdc-demo: its program arguments (args), which Flink's REST API "
                                  "does not say",)


def test_what_was_not_found_is_said_and_the_file_still_checks(tmp_path):
    found = FoundCluster(
        rest_url="http://10.0.0.5:8081", name="flink-10-0-0-5-8081", taskmanagers=0,
        not_found=("the cluster's containers: 0 containers on this Docker engine publish port 8081",),
        jobs=(FoundJob(name="orders", job_id="a" * 32, state="RESTARTING", checkpoint_dir="s3://bucket/chk",
                       uploaded_jars=("a.jar", "b.jar")),
              FoundJob(name="1.20", job_id="b" * 32, state="RUNNING", checkpointing=False)),
    )
    result, inventory = written(found, tmp_path)
    (cluster,) = inventory.clusters
    assert cluster.containers.compose_project == "flink-10-0-0-5-8081" and cluster.expected_taskmanagers == 1
    assert "NOT FOUND" in line_with(result.text, "compose_project:")
    orders, numbered = cluster.jobs
    assert orders.jar is None and orders.checkpoint_dir.container is None  # s3: Flink's REST API says the latest
    assert numbered.name == "1.20"  # quoted: not read back as the number 1.2
    assert "uploaded: a.jar, b.jar" in result.text and "checkpointing is off" in result.text
    assert result.open_points[0] == found.not_found[0]
    assert any("which jar it runs" in point for point in result.open_points)
    assert any("checkpointing is off" in point for point in result.open_points)
    assert "# audit: NOT FOUND" in result.text


def test_no_job_running_is_an_empty_list_and_an_open_point(tmp_path):
    result, inventory = written(FoundCluster(rest_url="http://127.0.0.1:8081", name="idle", compose_project="idle",
                                             jobmanager_service="jm", taskmanagers=2), tmp_path)
    assert inventory.clusters[0].jobs == () and inventory.clusters[0].expected_taskmanagers == 2
    assert any("no job runs now" in point for point in result.open_points)
    assert "NOT FOUND" in line_with(result.text, "taskmanager_service:")


def test_a_jar_not_beside_the_inventory_is_a_decision():
    job = FoundJob(**{**DEMO_JOB.__dict__, "jar_path": None})
    result = starting_inventory(FoundCluster(**{**DEMO.__dict__, "jobs": (job,)}), "init")
    assert "# DECIDE: the path of this jar on this host" in line_with(result.text, "jar:")
    assert any("put demo-job.jar beside the inventory" in point for point in result.open_points)


def test_readers_of_the_docker_and_flink_answers():
    assert publishes({"6123/tcp": None, "8081/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18461"}]}, 18461)
    assert not publishes({"8081/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18461"}]}, 8081)
    assert host_side("/data/checkpoints", MOUNTS) == "/srv/data/checkpoints"
    deeper = [*MOUNTS, {"Source": "/fast/chk", "Destination": "/data/checkpoints"}]
    assert host_side("/data/checkpoints/x", deeper) == "/fast/chk/x"
    assert host_side("/database", MOUNTS) is None  # /data is not a prefix of /database
    assert mounted_config_file(MOUNTS) == "/srv/stack/docker/jobmanager/flink-conf.yaml"
    assert [local_path(p) for p in ("file:///data/c/", "file:/data/c", "/data/c", "s3://b/c")] == [
        "/data/c", "/data/c", "/data/c", None]
    by_address = {"172.21.0.2": "jm", "172.21.0.3": "workers"}
    assert taskmanager_service(["172.21.0.3"], by_address) == ("workers", None)
    assert taskmanager_service([], {"172.21.0.2": "jobmanager", "172.21.0.4": "taskmanager"})[0] == "taskmanager"
    assert taskmanager_service([], by_address) == (None, None)
    assert jar_of(["realtime-cdc-demo"], JARS)[:2] == ("demo-job.jar", "flinkrunbook.demo.SequenceToCsvJob")
    assert jar_of(["a"], [*JARS, {"name": "other.jar", "entry": []}]) == (None, None, None)
    assert cluster_name(None, "My_Project", "http://h:8081") == "my-project"
    assert cluster_name(None, None, "http://Flink.example:18081") == "flink-flink-example-18081"
    assert cluster_name("given", "p", "http://h:8081") == "given"
    # Flink 2.x renamed the checkpoint directory's key; a job's own setting is read either way.
    assert checkpoint_dir_setting({"execution.checkpointing.dir": "file:///c2"}) == "file:///c2"
    assert checkpoint_dir_setting({"state.checkpoints.dir": "file:///c1"}) == "file:///c1"
    assert checkpoint_dir_setting({}) is None


def test_a_port_published_here_for_a_remote_rest_host_is_only_a_guess(tmp_path):
    addresses = {"172.21.0.3"}
    assert same_cluster_unproven("127.0.0.1", [], addresses) is None
    assert same_cluster_unproven("flink.prod", ["172.21.0.3"], addresses) is None  # its TaskManager is here
    why = same_cluster_unproven("flink.prod", ["10.1.2.3"], addresses)
    assert "flink.prod is not this machine's loopback" in why
    result, _ = written(FoundCluster(**{**DEMO.__dict__, "compose_project_guess": why}), tmp_path)
    assert "# GUESSED:" in line_with(result.text, "compose_project:")
    assert "the cluster's compose project (guessed realtime-pipeline)" in result.open_points


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--rest", "ftp://jm:8081"], "is not the http:// or https:// address of a JobManager"),
        (["--rest", "http://jm:8081", "--cluster", "Bad_Name"], "must be lowercase letters"),
        (["--rest", "http://jm:8081", "--output", "/nonexistent-dir/inventory.yaml"], "does not exist"),
    ],
)
def test_bad_init_arguments_exit_2_with_one_line(capsys, argv, says):
    assert main(["init", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err


def test_init_never_overwrites_a_file(tmp_path, capsys):
    existing = tmp_path / "inventory.yaml"
    existing.write_text("mine\n")
    assert main(["init", "--rest", "http://127.0.0.1:9", "--output", str(existing)]) == 2
    assert "never overwrites" in capsys.readouterr().err and existing.read_text() == "mine\n"
