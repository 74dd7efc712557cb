"""The runbook's advice as findings on Flink config files: its own snippets, the demo stack's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_runbook.audit.config import audit_flink_config
from flink_runbook.flink.config_file import read_flink_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
STACK = Path(__file__).resolve().parents[2] / "stack" / "docker"


def codes(findings) -> dict[str, str]:
    return {f.code: f.severity for f in findings}


def write(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return read_flink_config(path)


def test_the_runbooks_advice_passes_its_own_checks_but_not_the_checkpoint_ones():
    findings = audit_flink_config(read_flink_config(FIXTURES / "runbook" / "flink-conf.yaml"), "1.20.5")
    # 3 min timeout, 10 s interval, 10 x 10 s restarts... = 100 s: still short of a container coming back.
    assert codes(findings) == {
        "CONFIG_KEY_RENAMED": "info",
        "RESTART_BUDGET_SHORT": "warning",
        "CHECKPOINTING_NOT_CONFIGURED": "warning",
        "CHECKPOINTS_NOT_RETAINED": "error",
        "CHECKPOINT_DIR_NOT_CONFIGURED": "error",
    }
    renamed = next(f for f in findings if f.code == "CONFIG_KEY_RENAMED")
    assert (renamed.current, renamed.recommended) == ("restart-strategy", "restart-strategy.type")
    assert renamed.where.endswith("runbook/flink-conf.yaml:8 restart-strategy")
    budget = next(f for f in findings if f.code == "RESTART_BUDGET_SHORT")
    assert "10 attempts x 10 s = 100 s" in budget.current


@pytest.mark.parametrize(("name", "release"), [("flink-conf.yaml", "1.20.5"), ("config.yaml", "2.3.0")])
def test_the_demo_stack_is_as_fragile_as_the_runbooks_cluster(name, release):
    findings = audit_flink_config(read_flink_config(STACK / "taskmanager" / name), release)
    found = codes(findings)
    assert found["HEARTBEAT_TIMEOUT_SHORT"] == "warning" and found["RESTART_BUDGET_SHORT"] == "warning"
    assert "CHECKPOINTS_NOT_RETAINED" not in found and "CHECKPOINT_DIR_NOT_CONFIGURED" not in found
    timeout = next(f for f in findings if f.code == "HEARTBEAT_TIMEOUT_SHORT")
    assert timeout.current == "heartbeat.timeout: 5 s" and f"{name}:" in timeout.where
    assert "3 attempts x 1 s = 3 s" in next(f for f in findings if f.code == "RESTART_BUDGET_SHORT").current


def test_a_key_flink_2_no_longer_reads_is_an_error_there_and_only_deprecated_on_1_20(tmp_path):
    config = write(tmp_path, "config.yaml", "state.backend.async: true\nstate.checkpoints.dir: file:///cp\n")
    on_2 = audit_flink_config(config, "2.3.0")
    gone = [f for f in on_2 if f.code == "CONFIG_KEY_GONE"]
    assert [(f.current, f.severity) for f in gone] == [("state.backend.async: true", "error")]
    assert "does not read state.backend.async (Flink 1.20.5 did)" in gone[0].why
    renamed = [f for f in on_2 if f.code == "CONFIG_KEY_RENAMED"]
    assert [(f.current, f.recommended) for f in renamed] == [("state.checkpoints.dir", "execution.checkpointing.dir")]
    assert "CHECKPOINT_DIR_NOT_CONFIGURED" not in codes(on_2)  # the old name is still read
    assert "CONFIG_KEY_GONE" not in codes(audit_flink_config(config, "1.20.5"))


def test_a_healthy_config_has_no_warning(tmp_path):
    config = write(
        tmp_path,
        "config.yaml",
        "heartbeat:\n  interval: 10 s\n  timeout: 3 min\n"
        "restart-strategy:\n  type: exponential-delay\n"
        "execution:\n  checkpointing:\n    interval: 30 s\n    dir: file:///data/checkpoints\n"
        "    externalized-checkpoint-retention: RETAIN_ON_CANCELLATION\n",
    )
    assert audit_flink_config(config, "2.3.0") == []


def test_a_ratio_of_timeout_to_interval_below_five_is_flagged_with_flinks_defaults_filling_in(tmp_path):
    config = write(tmp_path, "flink-conf.yaml", "heartbeat.interval: 20000\n")  # timeout left at 50 s
    ratio = next(f for f in audit_flink_config(config, "1.20.5") if f.code == "HEARTBEAT_RATIO_LOW")
    assert ratio.current == "heartbeat.timeout / heartbeat.interval = 50 s / 20 s"
    assert ratio.where.endswith("flink-conf.yaml:1 heartbeat.interval")


@pytest.mark.parametrize(
    ("release", "name"), [("1.18.1", "flink-conf.yaml"), ("1.20.5", "config.yaml"), ("2.3.0", "config.yaml")]
)
def test_flinks_shipped_default_config_is_not_ready_for_lossless_recovery(release, name):
    config = read_flink_config(FIXTURES / f"flink-{release}-default" / name)
    assert config.skipped == [] and config.value("taskmanager.memory.process.size") == "1728m"
    assert codes(audit_flink_config(config, release)) == {
        "CHECKPOINTING_NOT_CONFIGURED": "warning",
        "CHECKPOINTS_NOT_RETAINED": "error",
        "CHECKPOINT_DIR_NOT_CONFIGURED": "error",
    }


def test_a_value_flink_cannot_parse_is_a_finding_not_a_crash(tmp_path):
    config = write(
        tmp_path,
        "flink-conf.yaml",
        "heartbeat.timeout: three minutes\nrestart-strategy.type: fixed-delay\n"
        "restart-strategy.fixed-delay.attempts: ten\n",
    )
    invalid = [f for f in audit_flink_config(config, "1.20.5") if f.code == "CONFIG_VALUE_INVALID"]
    assert [(f.current, f.where.rsplit(":", 1)[-1]) for f in invalid] == [
        ("heartbeat.timeout: three minutes", "1 heartbeat.timeout"),
        ("restart-strategy.fixed-delay.attempts: ten", "3 restart-strategy.fixed-delay.attempts"),
    ]
