"""The README's "Watch your own cluster", followed literally on the demo stack, so its steps cannot rot: install
the built wheel alone (no checkout, no extra), `init` writes the inventory, a person settles what init could
not know, `serve` watches the cluster on its embedded Prefect server, a frozen TaskManager is recovered and
`status` shows the incident.

The wheel's dependencies are downloaded from PyPI once into the shared cache (a wheelhouse per pyproject.toml
dependencies) and installed from there afterwards: a run spends no minutes on the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

from flink_runbook.demo import faults
from flink_runbook.demo.job import committed_ids, demo_job_args
from flink_runbook.demo.versions import cache_dir
from flink_runbook.polling import wait_until

from .conftest import assert_every_id_exactly_once, free_local_port, one_release, run_demo_job

REPO = Path(__file__).resolve().parents[2]
PIP_QUIET = ["--quiet", "--disable-pip-version-check"]


def wheelhouse() -> Path:
    """Every wheel the product needs to build and to run, downloaded once per set of requirements and Python
    release (pip download of pyproject.toml's build requirements and dependencies)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [*project["build-system"]["requires"], *project["project"]["dependencies"]]
    key = hashlib.sha256(f"{sorted(wanted)} {sys.version_info[:2]}".encode()).hexdigest()[:16]
    house = cache_dir() / f"wheelhouse-{key}"
    if not (house / ".complete").exists():
        partial = house.with_name(f"{house.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "download", *PIP_QUIET, "-d", str(partial), *wanted],
                       check=True, timeout=900)
        (partial / ".complete").touch()
        if not (house / ".complete").exists():  # another run may have finished first
            shutil.rmtree(house, ignore_errors=True)
            partial.rename(house)
        shutil.rmtree(partial, ignore_errors=True)
    return house


def build_wheel(into: Path, house: Path) -> Path:
    """`pip wheel --no-deps` of a copy of the package's sources (a build in the checkout leaves build/ there),
    its build requirements from the wheelhouse."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    source = into / "source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in {"flink_runbook", *project["tool"]["setuptools"]["package-dir"].values()}:
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *PIP_QUIET, "--no-deps", "--no-index", "--find-links", str(house),
         "-w", str(into), str(source)],
        check=True, timeout=300,
    )
    (wheel,) = into.glob("flink_runbook-*.whl")
    return wheel


def installed_alone(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh virtualenv with the wheel installed, no extra; the environment to run it in, as an operator's
    would be: no checkout on any path, no Prefect server named (serve starts its own), its own homes."""
    house = wheelhouse()
    wheel = build_wheel(tmp_path / "dist", house)
    venv = tmp_path / "venv"
    # No pip in it and no byte-compiling of every installed module: each took tens of seconds on two cores.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", *PIP_QUIET,
         "--no-compile", "--no-index", "--find-links", str(house), wheel],
        check=True, timeout=600,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PREFECT_API_URL")}
    env.update(
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
        PYTHONNOUSERSITE="1",
        HOME=str(tmp_path / "home"),  # serve's default home (~/.local/share/flink-runbook) is the operator's
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        FLINK_RUNBOOK_STATE_DIR=str(tmp_path / "state"),
    )
    return venv, env


@one_release
def test_watch_your_own_cluster_as_the_readme_says(start_stack, flink_version, demo_job_jar, tmp_path):
    started = time.monotonic()
    # 1. Install the tool alone.
    venv, env = installed_alone(tmp_path)
    installed_s = time.monotonic() - started
    work = tmp_path / "work"
    work.mkdir()

    def tool(*args: str, timeout: float = 300, api: str | None = None) -> subprocess.CompletedProcess:
        began = time.monotonic()
        done = subprocess.run(
            [venv / "bin" / "flink-runbook", *args], cwd=work, capture_output=True, text=True, timeout=timeout,
            env={**env, "PREFECT_API_URL": api} if api else env,
        )
        print(f"$ flink-runbook {' '.join(args)}  -> {done.returncode} in {time.monotonic() - began:.1f}s\n"
              f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done

    # The product alone: the venv's own copy, without the demo's and the chart's packages.
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import importlib.util as u, flink_runbook; "
         "print(flink_runbook.__file__, u.find_spec('matplotlib'))"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(venv) and where[1] == "None", where
    assert tool("--version").stdout.strip() == f"flink-runbook {version('flink-runbook')}"
    served_help = tool("serve", "--help")
    assert served_help.returncode == 0 and "--api" in served_help.stdout and "--config" in served_help.stdout

    stack = start_stack(flink_version)
    old_job = run_demo_job(stack, demo_job_jar)
    shutil.copy(demo_job_jar, work / demo_job_jar.name)  # the person keeps the job's jar beside the inventory
    # 2. Write a starting inventory from what the cluster says.
    made = tool("init", "--rest", stack.settings.rest_url, "--output", "inventory.yaml")
    assert made.returncode == 0 and "its program arguments (args)" in made.stdout
    inventory = work / "inventory.yaml"
    assert tool("init", "--rest", stack.settings.rest_url, "--output", "inventory.yaml").returncode == 2
    text = inventory.read_text()
    (cluster,) = yaml.safe_load(text)["clusters"]
    assert cluster["name"] == cluster["containers"]["compose_project"] == stack.settings.project
    (job,) = cluster["jobs"]
    assert (job["jar"], job["checkpoint_dir"]["host"]) == (demo_job_jar.name, str(stack.checkpoint_dir))
    # 3. Read the inventory: what Flink's REST API does not say, the person writes (the job's arguments).
    args_line = next(line for line in text.splitlines() if line.strip().startswith("args: []"))
    inventory.write_text(text.replace(args_line, f"        args: {demo_job_args()}"))
    assert tool("inventory", "check", "--config", "inventory.yaml").returncode == 0
    diagnosed = tool("diagnose", "--config", "inventory.yaml")
    assert diagnosed.returncode == 0 and f"{stack.settings.project}: healthy" in diagnosed.stdout

    # 4. Serve, on the embedded Prefect server (its own port here: tests run side by side).
    port = free_local_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen(
        [venv / "bin" / "flink-runbook", "serve", "--config", "inventory.yaml", "--port", str(port)],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        # 5. Open the UI (here: its API, and `status`): the monitor has looked and found the cluster healthy.
        def status() -> dict:
            done = tool("status", "--config", "inventory.yaml", "--json", api=api, timeout=120)
            return json.loads(done.stdout)["clusters"][0] if done.stdout.startswith("{") else {}

        wait_until(status, lambda s: s.get("health") == "healthy" and s.get("guard", "").startswith("none"),
                   timeout=240, interval=3, what="serve up and the cluster seen healthy")
        wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60,
                   what="40 committed ids")
        committed_before = len(committed_ids(stack.output_dir))
        frozen_at = time.monotonic()
        faults.freeze(stack.taskmanager())
        seen_recovering: list[str] = []  # what status said while the recovery ran (shown, not timed: load varies)

        def status_during_the_incident() -> dict:
            now = status()
            if now.get("recovering"):
                seen_recovering.append(now["recovering"])
            return now

        after = wait_until(status_during_the_incident,
                           lambda s: (s.get("last_incident") or {}).get("result") == "recovered",
                           timeout=240, interval=3, what="the recovery of the frozen TaskManager in status")
        recovered_s = time.monotonic() - frozen_at
        assert after["health"] == "healthy", after
        assert "recovering" in after, after  # its value depends on when the poll fell (printed below)
        assert "unpause_containers" in after["last_incident"]["action"], after["last_incident"]
        plain = tool("status", "--config", "inventory.yaml", api=api)
        assert "last incident" in plain.stdout and "recovered" in plain.stdout
    finally:
        serving.send_signal(signal.SIGTERM)
        try:
            stopped = serving.wait(timeout=20)  # the stop itself is test_serve.py's
        except subprocess.TimeoutExpired:
            os.killpg(serving.pid, signal.SIGKILL)
            stopped = serving.wait()
        log.close()
        print("--- serve log, last lines ---\n" + "\n".join((tmp_path / "serve.log").read_text().splitlines()[-40:]))
    # The stop itself (exit codes, runs in flight) is tests/integration/test_serve.py's: here only that it began.
    assert "serve: stopping" in (tmp_path / "serve.log").read_text(), f"serve exited {stopped} without stopping"
    live = [j for j in stack.rest.jobs_overview() if j.live]
    assert len(live) == 1, live  # one copy: unpaused in time it kept its id, or resubmitted once
    assert_every_id_exactly_once(stack, at_least=committed_before + 40)
    print(f"\nstatus during the incident said RECOVERING {len(seen_recovering)} time(s): {seen_recovering[-1:]}")
    print(f"\ninstalled alone in {installed_s:.0f}s; frozen TaskManager recovered {recovered_s:.0f}s after the "
          f"fault (seen in status); the whole walkthrough took {time.monotonic() - started:.0f}s; job {old_job}")
