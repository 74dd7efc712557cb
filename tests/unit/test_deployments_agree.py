"""The deployments are defined in code (deployments/definitions.py, what `serve` runs) and in prefect.yaml
(what `prefect deploy --all` gives workers). The code is the source of truth; this holds prefect.yaml to it:
the same deployments, entrypoints, schedules, concurrency, tags and trigger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml

from flink_runbook.deployments.definitions import build_deployments

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "stack/inventory.yaml"


def in_code() -> dict:
    deployments = {}
    for d in build_deployments(ROOT / INVENTORY):
        schedules = []
        for s in d.schedules:
            interval = getattr(s.schedule, "interval", None)
            schedules.append({"interval": interval.total_seconds()} if isinstance(interval, timedelta)
                             else {"cron": s.schedule.cron})
        limit = None
        if d.concurrency_limit is not None:
            limit = {"limit": d.concurrency_limit, "collision_strategy": d.concurrency_options.collision_strategy.value}
        triggers = [
            {"name": t.name, "expect": sorted(t.expect), "match": dict(t.match.root),
             "parameters": {**t.parameters, "config": Path(t.parameters["config"]).relative_to(ROOT).as_posix()}}
            for t in d.triggers
        ]
        parameters = {**d.parameters, "config": Path(d.parameters["config"]).relative_to(ROOT).as_posix()}
        deployments[d.name] = {"entrypoint": d.entrypoint, "parameters": parameters, "schedules": schedules,
                               "concurrency_limit": limit, "tags": sorted(d.tags), "triggers": triggers}
    return deployments


def in_prefect_yaml() -> dict:
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {}
    for d in document["deployments"]:
        schedules = [{"interval": float(s["interval"])} if "interval" in s else {"cron": s["cron"]}
                     for s in d.get("schedules", [])]
        limit = d.get("concurrency_limit")
        triggers = [{"name": t["name"], "expect": sorted(t["expect"]), "match": t["match"],
                     "parameters": t["parameters"]} for t in d.get("triggers", [])]
        deployments[d["name"]] = {
            "entrypoint": d["entrypoint"], "parameters": d["parameters"], "schedules": schedules,
            "concurrency_limit": limit, "tags": sorted(d["tags"]), "triggers": triggers,
        }
    return deployments


def test_prefect_yaml_says_what_the_code_serves():
    code, yaml_file = in_code(), in_prefect_yaml()
    assert sorted(yaml_file) == sorted(code)
    for name in code:
        assert yaml_file[name] == code[name], name
