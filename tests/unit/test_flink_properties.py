"""FLINK_PROPERTIES read as the official image applies it (compose environment as a block or a list, the .env
file, env_file:), YAML merge keys read as Compose reads them, and --fix written where each setting lives.
Every file is written in tmp_path; the fixes are planned and written by the audit's own writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_runbook.audit.cluster import AuditInputs, audit_cluster
from flink_runbook.audit.compose_file import ComposeFileError, read_compose_file
from flink_runbook.audit.fixes import plan_fixes, write_fixes
from flink_runbook.flink.config_file import read_flink_config

ROLES = {"jobmanager": "jobmanager", "taskmanager": "taskmanager"}
URL = "http://127.0.0.1:8081"
RELEASE = "2.2.0"

# The demo's fragile settings, as FLINK_PROPERTIES only; restart policy and image in an anchor both merge.
ANCHORED = """\
# comment kept
x-flink: &flink
  image: flink:2.2
  restart: unless-stopped
  volumes: [data:/data]

services:
  jobmanager:
    <<: *flink
    command: jobmanager
    environment:
      FLINK_PROPERTIES: |
        jobmanager.rpc.address: jobmanager
        heartbeat.timeout: 5000
        execution.checkpointing.dir: file:///data/checkpoints
        execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION
  taskmanager:
    <<: *flink
    command: taskmanager   # a comment
    environment:
      - |
        FLINK_PROPERTIES=jobmanager.rpc.address: jobmanager
        heartbeat.timeout:   5000
volumes:
  data: {}
"""


def inputs(compose: Path, live: dict | None = None, **configs: Path) -> AuditInputs:
    return AuditInputs(
        cluster="c",
        flink_version=RELEASE,
        rest_url=URL,
        services=ROLES,
        configs={role: read_flink_config(path) for role, path in configs.items()},
        compose=read_compose_file(compose),
        live_config=live,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def by_code(result) -> dict:
    found: dict = {}
    for finding in result.findings:
        found.setdefault(finding.code, []).append(finding)
    return found


def fix(tmp_path: Path, audit_inputs: AuditInputs):
    probe = tmp_path / "probe"
    probe.mkdir(exist_ok=True)
    return write_fixes(plan_fixes(audit_inputs, audit_cluster(audit_inputs)), probe)


def test_block_and_list_forms_are_read_with_their_lines_and_merged_keys_count(tmp_path):
    compose = write(tmp_path / "docker-compose.yml", ANCHORED)
    read = read_compose_file(compose)
    jobmanager, taskmanager = read.services["jobmanager"], read.services["taskmanager"]
    assert jobmanager.settings["restart"] == taskmanager.settings["restart"] == "unless-stopped"
    assert jobmanager.lines["restart"] == 4 and jobmanager.merged["restart"] == 2
    assert {k: (e.value, e.line) for k, e in jobmanager.flink_properties.entries.items()} == {
        "jobmanager.rpc.address": ("jobmanager", 13),
        "heartbeat.timeout": ("5000", 14),
        "execution.checkpointing.dir": ("file:///data/checkpoints", 15),
        "execution.checkpointing.externalized-checkpoint-retention": ("RETAIN_ON_CANCELLATION", 16),
    }
    # The list form: the image removes every space, so "heartbeat.timeout:   5000" is heartbeat.timeout=5000.
    assert {k: (e.value, e.line) for k, e in taskmanager.flink_properties.entries.items()} == {
        "jobmanager.rpc.address": ("jobmanager", 22),
        "heartbeat.timeout": ("5000", 23),
    }

    result = audit_cluster(inputs(compose, live={"heartbeat.timeout": "5000", "jobmanager.rpc.address": "jobmanager"}))
    found = by_code(result)
    assert "RESTART_POLICY_MISSING" not in found  # restart: unless-stopped in the anchor both services merge
    assert sorted(f.where for f in found["HEARTBEAT_TIMEOUT_SHORT"]) == [
        f"{compose}:14 services.jobmanager.environment.FLINK_PROPERTIES heartbeat.timeout",
        f"{compose}:23 services.taskmanager.environment.FLINK_PROPERTIES heartbeat.timeout",
    ]
    assert "CHECKPOINTS_NOT_RETAINED" not in found and "CHECKPOINT_DIR_NOT_CONFIGURED" not in found
    # No file for the TaskManager and no REST answer with its settings: said, and nothing unset judged.
    assert any(n.startswith("taskmanager: no Flink config file") for n in result.not_read), result.not_read
    assert any("GET http://127.0.0.1:8081/jobmanager/config" in n for n in result.not_read)


def test_flink_properties_override_the_config_file_as_the_image_applies_them(tmp_path):
    conf = write(tmp_path / "config.yaml", "heartbeat.timeout: 180000\nheartbeat.interval: 10000\n")
    compose = write(
        tmp_path / "docker-compose.yml",
        "services:\n  jobmanager:\n    image: f\n    restart: always\n    environment:\n"
        "      FLINK_PROPERTIES: |\n        heartbeat.timeout: 5000\n"
        "  taskmanager:\n    image: f\n    restart: always\n",
    )
    found = by_code(audit_cluster(inputs(compose, jobmanager=conf)))
    (short,) = found["HEARTBEAT_TIMEOUT_SHORT"]
    assert short.where == f"{compose}:7 services.jobmanager.environment.FLINK_PROPERTIES heartbeat.timeout"
    assert short.current == "heartbeat.timeout: 5 s"


def test_fix_edits_the_properties_line_and_adds_one_to_the_block_keeping_the_rest(tmp_path):
    compose = write(tmp_path / "docker-compose.yml", ANCHORED.replace(
        "        execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION\n", ""
    ))
    before = compose.read_text()
    live = {"heartbeat.timeout": "5000"}
    (written,) = [w for w in fix(tmp_path, inputs(compose, live=live)) if w.backup]
    after = compose.read_text()
    assert Path(written.backup).read_text() == before
    assert not [left for left in written.left if "HEARTBEAT" in left], written.left  # fixed, not left
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]
    assert changed[:1] == [("        heartbeat.timeout: 5000", "        heartbeat.timeout: 180000")]
    assert "        execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION" in after
    assert "    command: taskmanager   # a comment" in after and after.startswith("# comment kept\n")
    assert "        heartbeat.timeout:   180000" in after  # the list form's line, its spacing kept
    assert len(after.splitlines()) == len(before.splitlines()) + 1  # the one added line
    again = by_code(audit_cluster(inputs(compose, live=live)))
    assert "HEARTBEAT_TIMEOUT_SHORT" not in again and "CHECKPOINTS_NOT_RETAINED" not in again
    # The running JobManager still has the old value until its container is recreated: said so.
    (not_applied,) = again["CONFIG_NOT_APPLIED"]
    assert "recreate" in not_applied.recommended and ":14 " in not_applied.where


def test_properties_from_the_env_file_are_found_and_fixed_there(tmp_path):
    env = write(
        tmp_path / ".env", 'IMAGE=f:2\nFLINK_PROPERTIES="jobmanager.rpc.address: jm\nheartbeat.timeout: 5000"\n'
    )
    compose = write(
        tmp_path / "docker-compose.yml",
        "services:\n  jobmanager:\n    image: ${IMAGE}\n    restart: always\n"
        "    environment:\n      FLINK_PROPERTIES: ${FLINK_PROPERTIES}\n"
        "  taskmanager:\n    image: ${IMAGE}\n    restart: always\n"
        "    environment:\n      - FLINK_PROPERTIES=${FLINK_PROPERTIES}\n",
    )
    audit_inputs = inputs(compose, live={})
    wheres = {f.where for f in by_code(audit_cluster(audit_inputs))["HEARTBEAT_TIMEOUT_SHORT"]}
    assert wheres == {f"{env}:3 FLINK_PROPERTIES heartbeat.timeout"}  # one text both services get: said once
    fix(tmp_path, audit_inputs)
    assert env.read_text() == 'IMAGE=f:2\nFLINK_PROPERTIES="jobmanager.rpc.address: jm\nheartbeat.timeout: 180000"\n'
    assert "HEARTBEAT_TIMEOUT_SHORT" not in by_code(audit_cluster(inputs(compose, live={})))


def test_env_file_of_a_service_is_read(tmp_path):
    write(tmp_path / "flink.env", "FLINK_PROPERTIES=heartbeat.timeout: 4000\n")
    compose = write(
        tmp_path / "docker-compose.yml",
        "services:\n  jobmanager:\n    image: f\n    restart: always\n    env_file: flink.env\n"
        "  taskmanager:\n    image: f\n    restart: always\n",
    )
    (short,) = by_code(audit_cluster(inputs(compose, live={})))["HEARTBEAT_TIMEOUT_SHORT"]
    assert short.where == f"{tmp_path / 'flink.env'}:1 FLINK_PROPERTIES heartbeat.timeout"


def test_a_merged_restart_policy_is_fixed_in_the_anchor_or_refused_when_another_service_merges_it(tmp_path):
    text = (
        "x-base: &base\n  image: f\n  restart: \"no\"\n"
        "services:\n  jobmanager:\n    <<: *base\n  taskmanager:\n    <<: *base\n    command: taskmanager\n"
    )
    compose = write(tmp_path / "docker-compose.yml", text)
    (finding, *_) = by_code(audit_cluster(inputs(compose, live={})))["RESTART_POLICY_MISSING"]
    assert finding.where.startswith(f"{compose}:3 services.") and "merged from the map at line 1" in finding.where
    fix(tmp_path, inputs(compose, live={}))
    assert compose.read_text() == text.replace('restart: "no"', "restart: unless-stopped")

    shared = text.replace('restart: unless-stopped', 'restart: "no"') + "  zookeeper:\n    <<: *base\n"
    compose.write_text(shared)
    (written,) = fix(tmp_path, inputs(compose, live={}))
    assert compose.read_text() == shared and written.backup is None
    assert any("which zookeeper merge(s) too" in left for left in written.left), written.left


def test_a_properties_text_not_one_setting_a_line_is_left_for_a_human_with_the_reason(tmp_path):
    text = (
        "services:\n  jobmanager:\n    image: f\n    restart: always\n    environment:\n"
        '      FLINK_PROPERTIES: "heartbeat.timeout: 5000\\nheartbeat.interval: 1000"\n'
        "  taskmanager:\n    image: f\n    restart: always\n"
    )
    compose = write(tmp_path / "docker-compose.yml", text)
    audit_inputs = inputs(compose, live={})
    assert "HEARTBEAT_TIMEOUT_SHORT" in by_code(audit_cluster(audit_inputs))
    (written,) = fix(tmp_path, audit_inputs)
    assert compose.read_text() == text and written.backup is None
    assert any("not written one setting a line" in left for left in written.left), written.left


def test_properties_in_an_anchor_a_third_service_merges_are_left_for_a_human(tmp_path):
    text = (
        "x-flink: &flink\n  image: f\n  restart: always\n  environment:\n    FLINK_PROPERTIES: |\n"
        "      heartbeat.timeout: 5000\n"
        "services:\n  jobmanager:\n    <<: *flink\n  taskmanager:\n    <<: *flink\n  sql-client:\n    <<: *flink\n"
    )
    compose = write(tmp_path / "docker-compose.yml", text)
    (short,) = by_code(audit_cluster(inputs(compose, live={})))["HEARTBEAT_TIMEOUT_SHORT"]
    assert short.where == f"{compose}:6 FLINK_PROPERTIES heartbeat.timeout"  # in the anchor, said once
    (written,) = fix(tmp_path, inputs(compose, live={}))
    assert compose.read_text() == text and written.backup is None
    assert any("shared with sql-client" in left for left in written.left), written.left
    # Only the two Flink services merge it: fixed in the anchor, for both.
    compose.write_text(text.replace("  sql-client:\n    <<: *flink\n", ""))
    fix(tmp_path, inputs(compose, live={}))
    assert "      heartbeat.timeout: 180000\n" in compose.read_text()


def test_without_any_config_file_or_running_jobmanager_only_what_flink_properties_set_is_judged(tmp_path):
    compose = write(
        tmp_path / "docker-compose.yml",
        "services:\n  jobmanager:\n    image: f\n    restart: always\n    environment:\n"
        "      FLINK_PROPERTIES: |\n        heartbeat.timeout: 5000\n"
        "  taskmanager:\n    image: f\n    restart: always\n",
    )
    result = audit_cluster(inputs(compose, live=None))
    # Checkpoint retention and directory are unset here, but the image's own file may set them: not judged.
    judged = {f.code for f in result.findings} - {"MEMORY_LIMIT_MISSING"}
    assert judged == {"HEARTBEAT_TIMEOUT_SHORT", "HEARTBEAT_RATIO_LOW"}
    assert [n.split(":")[0] for n in result.not_read] == ["jobmanager", "taskmanager"]
    assert "the JobManager does not answer" in result.not_read[0]


def test_a_line_is_added_to_a_quoted_env_value_but_not_to_a_one_line_list_item(tmp_path):
    env = write(tmp_path / ".env", 'FLINK_PROPERTIES="heartbeat.timeout: 5000"\n')
    compose = write(
        tmp_path / "docker-compose.yml",
        "services:\n  jobmanager:\n    image: f\n    restart: always\n"
        "    environment:\n      FLINK_PROPERTIES: ${FLINK_PROPERTIES}\n"
        "  taskmanager:\n    image: f\n    restart: always\n",
    )
    fix(tmp_path, inputs(compose, live={}))
    assert env.read_text() == (
        'FLINK_PROPERTIES="heartbeat.timeout: 180000\n'
        'execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION"\n'
    )

    one_line = (
        "services:\n  jobmanager:\n    image: f\n    restart: always\n"
        '    environment:\n      - "FLINK_PROPERTIES=heartbeat.timeout: 5000"\n'
        "  taskmanager:\n    image: f\n    restart: always\n"
    )
    compose.write_text(one_line)
    (written,) = [w for w in fix(tmp_path, inputs(compose, live={})) if w.path == str(compose)]
    # The edit in place is kept; the line a YAML double-quoted item would fold into a space is not.
    assert compose.read_text() == one_line.replace("5000", "180000")
    assert any("would not read back as a setting of its own" in left for left in written.left), written.left


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "services:\n  jobmanager:\n    environment:\n      - FLINK_PROPERTIES=heartbeat.timeout: 5000\n",
            "line 4: an environment item is a map (an unquoted ': ' in it?)",
        ),
        ("x: &x [1]\nservices:\n  jobmanager:\n    <<: *x\n", "line 4: '<<' must merge a map (an anchor)"),
    ],
    ids=["unquoted-list-item", "merge-of-a-list"],
)
def test_what_compose_would_refuse_is_a_clear_error_naming_file_and_line(tmp_path, text, expected):
    compose = write(tmp_path / "docker-compose.yml", text)
    with pytest.raises(ComposeFileError) as error:
        read_compose_file(compose)
    assert str(error.value).startswith(f"{compose}: {expected}")


def test_with_no_file_named_the_running_jobmanager_is_audited_and_the_report_says_what_was_not():
    live = {"heartbeat.timeout": "5000", "heartbeat.interval": "2000"}
    result = audit_cluster(AuditInputs(cluster="c", flink_version=RELEASE, rest_url=URL, services=ROLES,
                                       live_config=live))
    assert {"HEARTBEAT_TIMEOUT_SHORT", "HEARTBEAT_RATIO_LOW"} <= {f.code for f in result.findings}
    assert all(URL in f.where for f in result.findings if f.code.startswith("HEARTBEAT")), result.findings
    assert result.not_read[0].startswith("no compose file in the inventory (audit.compose_file)")
    assert any(n.startswith("jobmanager:") and "judged from the running JobManager" in n for n in result.not_read)
