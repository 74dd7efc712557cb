"""Flink configuration files read as Flink reads them: legacy flink-conf.yaml and standard config.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_runbook.flink.config_file import LEGACY, STANDARD, ConfigFileError, read_flink_config
from flink_runbook.flink.options import option_catalogue

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
STACK = Path(__file__).resolve().parents[2] / "stack" / "docker"


def test_the_runbooks_snippets_read_as_flink_reads_them():
    config = read_flink_config(FIXTURES / "runbook" / "flink-conf.yaml")
    assert config.format == LEGACY
    assert {k: e.value for k, e in config.entries.items()} == {
        "heartbeat.timeout": "180000",
        "heartbeat.interval": "10000",
        "restart-strategy": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "10",
        "restart-strategy.fixed-delay.delay": "10s",
    }
    assert config.entries["heartbeat.interval"].line == 5
    assert config.where("heartbeat.timeout").endswith("runbook/flink-conf.yaml:2 heartbeat.timeout")
    assert config.skipped == []


def test_legacy_lines_flink_would_skip_are_reported_and_the_last_duplicate_wins(tmp_path):
    path = tmp_path / "flink-conf.yaml"
    path.write_text("heartbeat.timeout:5000\nheartbeat.interval: 1000\nheartbeat.interval: 2000\nfoo: \n")
    config = read_flink_config(path)
    assert "heartbeat.timeout" not in config.entries  # no space after the colon: Flink 1.x ignores the line
    assert config.value("heartbeat.interval") == "2000" and config.entries["heartbeat.interval"].line == 3
    assert any("line 1" in s and "heartbeat.timeout:5000" in s for s in config.skipped)
    assert any("set again on line 3" in s for s in config.skipped)
    assert any("line 4" in s for s in config.skipped)


def test_nested_and_flat_config_yaml_give_the_same_keys(tmp_path):
    nested = tmp_path / "nested" / "config.yaml"
    flat = tmp_path / "flat" / "config.yaml"
    nested.parent.mkdir(), flat.parent.mkdir()
    nested.write_text(
        "heartbeat:\n  interval: 1000\n  timeout: 5000\nrestart-strategy:\n  type: fixed-delay\n"
        "env:\n  java:\n    opts:\n      all: --add-opens=a --add-opens=b\n"
        "pipeline:\n  jars: [file:///a.jar, file:///b.jar]\nflag: on\n"
    )
    flat.write_text(
        "heartbeat.interval: 1000\nheartbeat.timeout: 5000\nrestart-strategy.type: fixed-delay\n"
        "env.java.opts.all: --add-opens=a --add-opens=b\npipeline.jars: [file:///a.jar, file:///b.jar]\nflag: on\n"
    )
    a, b = read_flink_config(nested), read_flink_config(flat)
    assert a.format == b.format == STANDARD
    assert {k: e.value for k, e in a.entries.items()} == {k: e.value for k, e in b.entries.items()}
    assert a.value("flag") == "on"  # as written, not YAML 1.1's True
    assert a.value("pipeline.jars") == "[file:///a.jar, file:///b.jar]"
    assert a.entries["heartbeat.timeout"].line == 3 and b.entries["heartbeat.timeout"].line == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("heartbeat:\n  timeout: [1\n", "not valid YAML"),
        ("- heartbeat.timeout: 1\n", "line 1: the top level must be a map"),
        ("heartbeat.timeout: 1\n  bad indent: 2\n", "line 2"),
    ],
)
def test_malformed_config_yaml_names_the_file_and_line(tmp_path, text, expected):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as caught:
        read_flink_config(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigFileError, match="flink-conf.yaml: cannot read"):
        read_flink_config(tmp_path / "flink-conf.yaml")


def test_the_demo_stacks_files_for_1_20_and_2_2_hold_the_same_runbook_settings():
    """flink-conf.yaml (1.20) and config.yaml (2.2) differ in key names, not in what they set."""
    settings = {}
    for name, release in (("flink-conf.yaml", "1.20.5"), ("config.yaml", "2.3.0")):
        config = read_flink_config(STACK / "jobmanager" / name)
        assert config.skipped == []
        catalogue = option_catalogue(release)
        settings[name] = {catalogue.current_key(k): e.value for k, e in config.entries.items() if k in RUNBOOK_KEYS}
    assert settings["flink-conf.yaml"] == settings["config.yaml"]
    assert settings["config.yaml"]["heartbeat.timeout"] == "5000"
    assert settings["config.yaml"]["execution.checkpointing.dir"] == "file:///data/checkpoints"


RUNBOOK_KEYS = {
    "heartbeat.interval",
    "heartbeat.timeout",
    "restart-strategy.type",
    "restart-strategy.fixed-delay.attempts",
    "restart-strategy.fixed-delay.delay",
    "state.checkpoints.dir",
    "execution.checkpointing.dir",
    "execution.checkpointing.externalized-checkpoint-retention",
}
