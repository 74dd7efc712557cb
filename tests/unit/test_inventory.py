"""Loading the inventory: typed models, and errors that name file, key path and reason."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from flink_runbook.demo.versions import STACK_DIR
from flink_runbook.inventory import InventoryError, load_inventory

VALID = """
clusters:
  - name: realtime-pipeline
    rest:
      url: https://flink.example.internal:8443/
      auth: {type: bearer, token_env: FLINK_TOKEN}
      tls: {verify: true, ca_bundle: certs/ca.pem}
    containers: {compose_project: realtime-pipeline}
    expected_taskmanagers: 2
    jobs:
      - name: cdc
        jar: jobs/cdc.jar
        entry_class: com.example.Cdc
        args: ["--source", oracle, 3]
        parallelism: 2
        checkpoint_dir: {host: /srv/flink/checkpoints, container: /data/checkpoints}
        no_checkpoint_policy: fresh
  - name: second
    rest: {url: "http://127.0.0.1:18081"}
    containers:
      names: {jobmanager: [flink-jobmanager], taskmanager: [tm-1, tm-2]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_inventory_is_typed(tmp_path):
    inventory = load_inventory(write(tmp_path, VALID))
    first, second = inventory.clusters
    assert first.rest.url == "https://flink.example.internal:8443"
    assert first.rest.auth.kind == "bearer" and first.rest.auth.token_env == "FLINK_TOKEN"
    assert first.rest.ca_bundle == tmp_path / "certs" / "ca.pem"
    (job,) = first.jobs
    assert job.args == ("--source", "oracle", "3")
    assert job.jar == tmp_path / "jobs" / "cdc.jar"
    assert job.parallelism == 2 and job.no_checkpoint_policy == "fresh"
    assert second.containers.taskmanager_names == ("tm-1", "tm-2")
    assert inventory.select("second") == (second,)


def test_shipped_demo_inventory_loads():
    (cluster,) = load_inventory(STACK_DIR / "inventory.yaml").clusters
    assert cluster.name == "realtime-pipeline"
    assert cluster.jobs[0].checkpoint_dir.container == "/data/checkpoints"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('url: "http://127.0.0.1:18081"', 'url: "htp://127.0.0.1:18081"'),
            r"clusters\[1\]\.rest\.url: 'htp://127.0.0.1:18081' is not an http:// or https:// URL",
        ),
        (
            ('url: "http://127.0.0.1:18081"', 'url: "http://127.0.0.1:99999"'),
            r"clusters\[1\]\.rest\.url: .* has an invalid port",
        ),
        (
            ("expected_taskmanagers: 2", "expected_taskmanagers: two"),
            r"clusters\[0\]\.expected_taskmanagers: expected an integer, got string 'two'",
        ),
        (
            ("expected_taskmanagers: 2", "expected_taskmanagers: true"),
            r"clusters\[0\]\.expected_taskmanagers: expected an integer, got true or false True",
        ),
        (("parallelism: 2", "parallelizm: 2"), r"clusters\[0\]\.jobs\[0\]\.parallelizm: unknown key; expected one of"),
        (
            ("no_checkpoint_policy: fresh", "no_checkpoint_policy: latest"),
            r"no_checkpoint_policy: 'latest' is not one of: fail, fresh",
        ),
        (("- name: second", "- name: Second_One"), r"clusters\[1\]\.name: 'Second_One' must be lowercase"),
        (("- name: second", "- name: realtime-pipeline"), r"clusters\[1\]\.name: 'realtime-pipeline' appears twice"),
        (
            ("auth: {type: bearer, token_env: FLINK_TOKEN}", "auth: {type: basic}"),
            r"clusters\[0\]\.rest\.auth: basic auth needs username_env and password_env",
        ),
        (
            ("containers: {compose_project: realtime-pipeline}", "containers: {}"),
            r"clusters\[0\]\.containers: give compose_project or names",
        ),
    ],
)
def test_invalid_inventory_names_file_key_and_reason(tmp_path, change, message):
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(InventoryError, match=message) as error:
        load_inventory(path)
    assert str(error.value).startswith(f"{path}: ")


def test_broken_yaml_gives_the_position(tmp_path):
    path = write(tmp_path, "clusters:\n  - name: a\n   rest: [\n")
    with pytest.raises(InventoryError, match=r"not valid YAML at line \d+, column \d+"):
        load_inventory(path)


def test_missing_file_and_unknown_cluster(tmp_path):
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "nope.yaml")
    inventory = load_inventory(write(tmp_path, VALID))
    with pytest.raises(InventoryError, match="no cluster named 'third'; the file defines: realtime-pipeline, second"):
        inventory.select("third")


@pytest.mark.parametrize("args", [["--cluster", "third"], []])
def test_cli_reports_bad_input_with_exit_2_and_no_traceback(tmp_path, args):
    path = write(tmp_path, VALID if args else VALID.replace("parallelism: 2", "parallelism: 0"))
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "diagnose", "--config", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"flink-runbook: {path}")
    assert result.stdout == ""


def test_monitor_settings_and_escalation_webhook(tmp_path):
    text = VALID.replace(
        "    containers: {compose_project: realtime-pipeline}\n",
        "    containers: {compose_project: realtime-pipeline}\n    monitor: {cooldown_s: 30, max_recoveries: 5}\n",
    )
    inventory = load_inventory(
        write(tmp_path, text + "notifications:\n  escalation_webhook_url: http://127.0.0.1:9/x\n")
    )
    first, second = inventory.clusters
    assert (first.monitor.cooldown_s, first.monitor.max_recoveries, first.monitor.window_s) == (30, 5, 3600.0)
    assert second.monitor.max_recoveries == 3
    assert inventory.escalation_webhook_url == "http://127.0.0.1:9/x"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("notifications:\n  escalation_webhook_url: slack-me\n", r"notifications\.escalation_webhook_url: 'slack-me'"),
        ("notifications:\n  email: a@b\n", r"notifications\.email: unknown key"),
    ],
)
def test_bad_notifications_are_named(tmp_path, extra, message):
    with pytest.raises(InventoryError, match=message):
        load_inventory(write(tmp_path, VALID + extra))


@pytest.mark.parametrize("args", [["monitor", "check"], ["monitor", "reset", "--cluster", "third"]])
def test_monitor_cli_refuses_bad_input_before_touching_prefect(tmp_path, args):
    path = write(tmp_path, VALID.replace("max_recoveries", "x") if "check" not in args else VALID + "monitor: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", *args[:2], "--config", str(path), *args[2:]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"flink-runbook: {path}")


# Every problem at once, each with its key path; a misspelt key is told what it may have meant.

THREE_MISTAKES = (
    ("expected_taskmanagers: 2", "expected_taskmanagers: 2\n    recovery: {stabilization_s: -3}"),
    ("no_checkpoint_policy: fresh", "no_checkpoint_policy: latest"),
    ('url: "http://127.0.0.1:18081"', 'url: "htp://127.0.0.1:18081"'),
)


def test_three_mistakes_are_three_problems_in_one_run(tmp_path):
    text = VALID
    for change in THREE_MISTAKES:
        text = text.replace(*change)
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as error:
        load_inventory(path)
    assert sorted(error.value.problems) == sorted([
        f"{path}: clusters[0].recovery.stabilization_s: must be at least 0, got -3",
        f"{path}: clusters[0].jobs[0].no_checkpoint_policy: 'latest' is not one of: fail, fresh",
        f"{path}: clusters[1].rest.url: 'htp://127.0.0.1:18081' is not an http:// or https:// URL with a host",
    ])
    assert str(error.value).splitlines() == list(error.value.problems)


def test_the_cli_prints_every_problem_on_its_own_line_with_exit_2(tmp_path):
    text = VALID
    for change in THREE_MISTAKES:
        text = text.replace(*change)
    path = write(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "inventory", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (2, "")
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"flink-runbook: {path}: clusters[") for line in lines), lines
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (  # the top level's notifications: once told "expected one of: escalation_webhook_url"
            ("clusters:", "notifications: {blokcs: [slack-webhook/oncall]}\nclusters:"),
            "notifications.blokcs: unknown key; expected one of: blocks, escalation_webhook_url, events; "
            "did you mean `blocks`?",
        ),
        (  # a cluster's notifications: once told "expected one of: " with nothing after it
            ("expected_taskmanagers: 2", "expected_taskmanagers: 2\n    notifications: {event: [recovered]}"),
            "clusters[0].notifications.event: unknown key; expected one of: blocks, events; did you mean `events`?",
        ),
        (
            ("parallelism: 2", "parallelizm: 2"),
            "clusters[0].jobs[0].parallelizm: unknown key; expected one of: args, checkpoint_dir, entry_class, jar, "
            "name, no_checkpoint_policy, on_canceled, parallelism, resubmit_command, resubmit_timeout_s, "
            "sink_output_dir, sql; did you mean `parallelism`?",
        ),
        (
            ("containers: {compose_project", "containers: {xyzzy: 1, compose_project"),
            "clusters[0].containers.xyzzy: unknown key; expected one of: compose_project, jobmanager_service, names, "
            "taskmanager_service",
        ),
    ],
)
def test_a_misspelt_key_is_named_with_the_keys_it_may_be(tmp_path, change, message):
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(InventoryError) as error:
        load_inventory(path)
    assert str(error.value) == f"{path}: {message}"


def test_a_rejected_value_never_repeats_a_urls_credentials(tmp_path):
    path = write(tmp_path, VALID.replace("connect_timeout_s", "x").replace(
        "expected_taskmanagers: 2", "expected_taskmanagers: 'http://ops:hunter2@h/?token=s3cr3t'"))
    with pytest.raises(InventoryError, match=r"expected_taskmanagers: expected an integer, got string") as error:
        load_inventory(path)
    assert "hunter2" not in str(error.value) and "s3cr3t" not in str(error.value)


# The JSON Schema editors check the file with: what the loader accepts, it accepts; what it refuses, it refuses.


@pytest.fixture(scope="module")
def schema() -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "inventory", "schema"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def schema_errors(schema: dict, data: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.validator}" for e in validator.iter_errors(data))


def test_the_schema_is_a_json_schema_that_accepts_the_shipped_inventory(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema_errors(schema, yaml.safe_load((STACK_DIR / "inventory.yaml").read_text())) == []
    assert schema_errors(schema, yaml.safe_load(VALID)) == []


def test_the_schema_refuses_what_the_loader_refuses(schema, tmp_path):
    text = VALID
    for change in (*THREE_MISTAKES, ("parallelism: 2", "parallelizm: 2")):
        text = text.replace(*change)
    assert schema_errors(schema, yaml.safe_load(text)) == [
        "clusters.0.jobs.0.no_checkpoint_policy: enum",
        "clusters.0.jobs.0: additionalProperties",
        "clusters.0.recovery.stabilization_s: minimum",
        "clusters.1.rest.url: pattern",
    ]
    with pytest.raises(InventoryError) as error:
        load_inventory(write(tmp_path, text))
    assert len(error.value.problems) == 4
    assert schema_errors(schema, {"clusters": []}) == ["clusters: minItems"]
