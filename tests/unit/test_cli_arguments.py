"""The CLI's own arguments: --version, and serve's (what it serves against, where it keeps its data, bad input
refused with one line and exit 2 before anything starts)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from flink_runbook.cli.main import main
from flink_runbook.serving.serve import build_parser, default_home


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    cluster = {"name": "c", "rest": {"url": "http://127.0.0.1:9"}, "containers": {"compose_project": "c"}}
    path.write_text(yaml.safe_dump({"clusters": [cluster], "state_dir": str(tmp_path / "state")}))
    return path


def test_version_prints_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"flink-runbook {version('flink-runbook')}"


def test_serve_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["serve", "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for option in ("--config", "--api", "--prefect-home", "--port", "--interval", "--limit", "--no-watch"):
        assert option in out


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--api", "ftp://prefect:4200/api"], "is not an http:// or https:// URL with a host"),
        (["--api", "http://[::1"], "is not a URL"),
        (["--api", "http://prefect:99999/api"], "is not a URL"),
        (["--port", "0"], "--port between 1 and 65535"),
        (["--interval", "1"], "--interval must be at least 5 seconds"),
    ],
)
def test_bad_serve_arguments_exit_2_with_one_line(inventory, tmp_path, capsys, extra, says):
    home = tmp_path / "home"
    assert main(["serve", "--config", str(inventory), "--prefect-home", str(home), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err
    assert not home.exists()  # nothing started, nothing written


def test_a_missing_inventory_exits_2_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["serve", "--config", str(missing), "--prefect-home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "cannot read" in err


def test_serve_needs_an_inventory(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["serve"])
    assert exit.value.code == 2 and "--config" in capsys.readouterr().err


def test_the_prefect_api_comes_from_api_else_the_environment(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://from-env:4200/api")
    assert build_parser().parse_args(["--config", "i.yaml"]).api == "http://from-env:4200/api"
    given = build_parser().parse_args(["--config", "i.yaml", "--api", "http://given:4200/api"])
    assert given.api == "http://given:4200/api"
    monkeypatch.delenv("PREFECT_API_URL")
    assert build_parser().parse_args(["--config", "i.yaml"]).api is None  # a local server of its own


def test_the_home_is_flink_runbook_home_else_the_users_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("FLINK_RUNBOOK_HOME", str(tmp_path / "fr"))
    assert default_home() == tmp_path / "fr"
    monkeypatch.delenv("FLINK_RUNBOOK_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_home() == tmp_path / "data" / "flink-runbook"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert default_home() == tmp_path / "me" / ".local" / "share" / "flink-runbook"
    assert build_parser().parse_args(["--config", "i.yaml"]).prefect_home == default_home()
