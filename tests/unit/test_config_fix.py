"""--fix as text edits: the fixable findings go, everything else stays byte for byte, nothing unsafe is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flink_runbook.audit.compose import audit_compose
from flink_runbook.audit.compose_file import read_compose_file
from flink_runbook.audit.config import audit_flink_config
from flink_runbook.audit.config_fix import FileFix, fix_compose, fix_flink_config
from flink_runbook.audit.fixes import UnsafeFix, write_fixes
from flink_runbook.flink.config_file import read_flink_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
STACK = Path(__file__).resolve().parents[2] / "stack"
NEEDS_A_HUMAN = {"CHECKPOINTING_NOT_CONFIGURED", "CHECKPOINT_DIR_NOT_CONFIGURED"}


def fix_file(path: Path, release: str) -> tuple[FileFix, set[str]]:
    config = read_flink_config(path)
    fix = fix_flink_config(config, path.read_text(), audit_flink_config(config, release), release)
    path.write_text(fix.fixed)
    return fix, {f.code for f in audit_flink_config(read_flink_config(path), release)}


def test_the_runbooks_snippet_is_fixed_and_its_comments_kept(tmp_path):
    path = tmp_path / "flink-conf.yaml"
    shutil.copy(FIXTURES / "runbook" / "flink-conf.yaml", path)
    before = path.read_text().splitlines()
    fix, left = fix_file(path, "1.20.5")
    assert left == NEEDS_A_HUMAN  # where checkpoints go and how often is the user's decision
    after = path.read_text().splitlines()
    assert after[:5] == before[:5]  # heartbeat settings were already the runbook's: untouched
    assert after[7] == "restart-strategy.type: fixed-delay"
    assert after[8] == "restart-strategy.fixed-delay.attempts: 30  # 增加到 10 次"  # the comment stays where it was
    assert after[9] == "restart-strategy.fixed-delay.delay: 10s"  # already 10 s: not rewritten
    assert after[-1] == "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION"
    assert len(fix.changes) == 3 and len(fix.left) == 2


@pytest.mark.parametrize(("name", "release"), [("flink-conf.yaml", "1.20.5"), ("config.yaml", "2.3.0")])
def test_the_demo_stacks_files_are_fixed_in_place(tmp_path, name, release):
    path = tmp_path / name
    shutil.copy(STACK / "docker" / "taskmanager" / name, path)
    original = path.read_text().splitlines()
    fix, left = fix_file(path, release)
    assert left == {"CHECKPOINTING_NOT_CONFIGURED"}  # the demo job checkpoints from its code
    fixed = path.read_text().splitlines()
    assert len(fixed) == len(original)  # edited in place: no line added or removed
    changed = [i for i, (a, b) in enumerate(zip(original, fixed, strict=True)) if a != b]
    assert all(original[i].split(":")[0].strip() in fixed[i] or "checkpoint" in fixed[i] for i in changed)
    assert read_flink_config(path).value("heartbeat.timeout") == "180000"


def test_a_value_in_a_flow_map_is_fixed_with_a_yaml_round_trip_that_keeps_comments(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("# the cluster's settings\nheartbeat: {interval: 1000, timeout: 5000}  # too short\n")
    config = read_flink_config(path)
    fix = fix_flink_config(config, path.read_text(), audit_flink_config(config, "2.3.0"), "2.3.0")
    lines = fix.fixed.splitlines()
    assert lines[0] == "# the cluster's settings"
    assert lines[1].startswith("heartbeat: {interval: 1000, timeout: 180000}") and lines[1].endswith("# too short")
    assert any(
        "heartbeat.timeout -> 180000" in change and "not on a line of its own" in change for change in fix.changes
    )
    fixed = read_flink_config_text(tmp_path, fix.fixed)
    assert fixed.value("heartbeat.timeout") == "180000" and fixed.value("heartbeat.interval") == "1000"


def test_a_nested_key_flink_renamed_is_renamed_with_its_value(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "state:\n  checkpoints:\n    dir: file:///data/checkpoints\n  backend:\n    type: hashmap  # keep\n"
        "execution.checkpointing.interval: 10 s\n"
    )
    config = read_flink_config(path)
    fix = fix_flink_config(config, path.read_text(), audit_flink_config(config, "2.3.0"), "2.3.0")
    fixed = read_flink_config_text(tmp_path, fix.fixed)
    assert "state.checkpoints.dir" not in fixed.entries
    assert fixed.value("execution.checkpointing.dir") == "file:///data/checkpoints"
    assert fixed.value("state.backend.type") == "hashmap" and "type: hashmap  # keep" in fix.fixed
    assert any("state.checkpoints.dir -> execution.checkpointing.dir" in change for change in fix.changes)
    assert not [left for left in fix.left if "state.checkpoints.dir" in left]


def test_flink_1_flink_conf_yaml_keeps_its_line_editor(tmp_path):
    path = tmp_path / "flink-conf.yaml"
    path.write_text("heartbeat.timeout: 5000   # short\nkey-without-value\n")
    config = read_flink_config(path)
    fix = fix_flink_config(config, path.read_text(), audit_flink_config(config, "1.20.5"), "1.20.5")
    assert fix.fixed.splitlines()[:2] == ["heartbeat.timeout: 180000   # short", "key-without-value"]


def test_a_name_flink_2_does_not_read_is_commented_out_not_deleted(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("state.backend.async: true  # old\nexecution.checkpointing.dir: file:///cp\n")
    config = read_flink_config(path)
    fix = fix_flink_config(config, path.read_text(), audit_flink_config(config, "2.3.0"), "2.3.0")
    assert (
        fix.fixed.splitlines()[0]
        == "# state.backend.async: true  # old  # Flink 2.3.0 does not read state.backend.async"
    )
    assert "state.backend.async" not in read_flink_config_text(tmp_path, fix.fixed).entries


def read_flink_config_text(directory: Path, text: str):
    probe = directory / "probe" / "config.yaml"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text(text)
    return read_flink_config(probe)


ROLES = {"jobmanager": "jobmanager", "taskmanager": "taskmanager"}


def audited_compose(path: Path) -> list:
    return audit_compose(read_compose_file(path), ROLES, {}, "file:///data/checkpoints", 1)


def compose_fixed(path: Path, text: str):
    """The compose file written, audited and fixed: (its findings, the fix)."""
    path.write_text(text)
    findings = audited_compose(path)
    return findings, fix_compose(read_compose_file(path), text, findings)


def test_a_missing_restart_policy_is_added_with_the_services_indentation(tmp_path):
    path = tmp_path / "docker-compose.yml"
    findings, fix = compose_fixed(
        path,
        "services:\n"
        "    jobmanager:\n        image: flink:1.20\n        volumes: [ckpt:/data]\n"
        "    taskmanager:\n        image: flink:1.20   # same\n        volumes: [ckpt:/data]\n"
        "volumes:\n    ckpt: {}\n",
    )
    assert [f.code for f in findings if f.severity != "info"] == ["RESTART_POLICY_MISSING"] * 2
    assert fix.fixed.splitlines()[1:4] == [
        "    jobmanager:",
        "        restart: unless-stopped",
        "        image: flink:1.20",
    ]
    assert "        image: flink:1.20   # same" in fix.fixed
    path.write_text(fix.fixed)
    assert [f.code for f in audited_compose(path) if f.severity != "info"] == []


def test_a_service_written_as_a_flow_map_gets_its_restart_policy_too(tmp_path):
    path = tmp_path / "docker-compose.yml"
    _, fix = compose_fixed(
        path,
        "services:\n  jobmanager: {image: 'flink:1.20', volumes: ['ckpt:/data']}  # one line\n"
        "  taskmanager:\n    image: flink:1.20\n    volumes: [ckpt:/data]\n"
        "volumes:\n  ckpt: {}\n",
    )
    assert not [left for left in fix.left if "restart" in left]  # the memory limits are the user's choice
    assert "restart: unless-stopped" in fix.fixed.splitlines()[1] and "# one line" in fix.fixed.splitlines()[1]
    path.write_text(fix.fixed)
    again = read_compose_file(path)
    assert {name: s.settings.get("restart") for name, s in again.services.items()} == {
        "jobmanager": "unless-stopped",
        "taskmanager": "unless-stopped",
    }
    assert again.services["jobmanager"].settings["volumes"] == ["ckpt:/data"]


def test_write_fixes_backs_up_then_writes_and_leaves_unchanged_files_alone(tmp_path):
    changed, unchanged = tmp_path / "a" / "config.yaml", tmp_path / "b" / "config.yaml"
    for path in (changed, unchanged):
        path.parent.mkdir()
        path.write_text("heartbeat.timeout: 5000\n")
    fixes = [
        FileFix(str(changed), "heartbeat.timeout: 5000\n", "heartbeat.timeout: 180000\n", ["x"]),
        FileFix(str(unchanged), "heartbeat.timeout: 5000\n", "heartbeat.timeout: 5000\n"),
    ]
    probe = tmp_path / "probe"
    probe.mkdir()
    written = write_fixes(fixes, probe)
    assert changed.read_text() == "heartbeat.timeout: 180000\n"
    assert Path(written[0].backup).read_text() == "heartbeat.timeout: 5000\n"
    assert written[1].backup is None and not list(unchanged.parent.glob("*.bak-*"))
    assert "-heartbeat.timeout: 5000\n+heartbeat.timeout: 180000" in written[0].diff


def test_a_fix_that_would_not_read_back_writes_nothing_at_all(tmp_path):
    good, bad = tmp_path / "a" / "config.yaml", tmp_path / "b" / "config.yaml"
    for path in (good, bad):
        path.parent.mkdir()
        path.write_text("heartbeat.timeout: 5000\n")
    fixes = [
        FileFix(str(good), "heartbeat.timeout: 5000\n", "heartbeat.timeout: 180000\n"),
        FileFix(str(bad), "heartbeat.timeout: 5000\n", "heartbeat: [unclosed\n"),
    ]
    probe = tmp_path / "probe"
    probe.mkdir()
    with pytest.raises(UnsafeFix, match="would not read back"):
        write_fixes(fixes, probe)
    assert good.read_text() == bad.read_text() == "heartbeat.timeout: 5000\n"
    assert not list(tmp_path.glob("*/*.bak-*"))
