"""Someone adopts flink-runbook for a cluster that already runs: installs the built wheel alone (no checkout,
no extra), lets `init` write the inventory, settles what init could not know, and relies on it to recover.

The wheel's dependencies are downloaded from PyPI once into the shared cache (a wheelhouse per pyproject.toml
dependencies) and installed from there afterwards: a run spends no minutes on the network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

from flink_runbook.demo import faults
from flink_runbook.demo.job import committed_ids, demo_job_args, wait_for_job_state
from flink_runbook.demo.versions import cache_dir
from flink_runbook.polling import wait_until

from .conftest import assert_every_id_exactly_once, one_release, run_demo_job

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


def installed_alone(tmp_path: Path, api_url: str) -> tuple[Path, dict[str, str]]:
    """A fresh virtualenv with the wheel installed, no extra; the environment to run it in (no checkout on
    any path, its own state dir, the runs on the Prefect server at `api_url`, as an operator's would be)."""
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
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
        PYTHONNOUSERSITE="1",
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        FLINK_RUNBOOK_STATE_DIR=str(tmp_path / "state"),
    )
    return venv, env


@one_release
def test_the_installed_wheel_adopts_a_running_cluster_and_recovers_it(
    start_stack, flink_version, demo_job_jar, prefect_server, tmp_path
):
    started = time.monotonic()
    venv, env = installed_alone(tmp_path, prefect_server.api_url)
    installed_s = time.monotonic() - started
    work = tmp_path / "work"
    work.mkdir()

    def tool(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        began = time.monotonic()
        done = subprocess.run(
            [venv / "bin" / "flink-runbook", *args], cwd=work, env=env, capture_output=True, text=True,
            timeout=timeout,
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
    served = tool("serve", "--help")
    assert served.returncode == 0 and "--api" in served.stdout and "--prefect-home" in served.stdout

    stack = start_stack(flink_version)
    old_job = run_demo_job(stack, demo_job_jar)
    shutil.copy(demo_job_jar, work / demo_job_jar.name)  # the person keeps the job's jar beside the inventory
    made = tool("init", "--rest", stack.settings.rest_url)
    assert made.returncode == 0 and "its program arguments (args)" in made.stdout
    inventory = work / "inventory.yaml"
    assert tool("init", "--rest", stack.settings.rest_url).returncode == 2  # never overwritten
    text = inventory.read_text()
    (cluster,) = yaml.safe_load(text)["clusters"]
    assert cluster["name"] == cluster["containers"]["compose_project"] == stack.settings.project
    (job,) = cluster["jobs"]
    assert (job["jar"], job["checkpoint_dir"]["host"]) == (demo_job_jar.name, str(stack.checkpoint_dir))
    # What Flink's REST API does not say, the person writes: the job's arguments.
    args_line = next(line for line in text.splitlines() if line.strip().startswith("args: []"))
    inventory.write_text(text.replace(args_line, f"        args: {demo_job_args()}"))

    assert tool("inventory", "check", "--config", "inventory.yaml").returncode == 0
    diagnosed = tool("diagnose", "--config", "inventory.yaml")
    assert diagnosed.returncode == 0 and f"{stack.settings.project}: healthy" in diagnosed.stdout

    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 40, timeout=60, what="40 committed ids")
    faults.freeze(stack.taskmanager())
    wait_for_job_state(stack.rest, old_job, {"FAILED"}, timeout=120)
    committed_before = len(committed_ids(stack.output_dir))
    recovered = tool("recover", "--config", "inventory.yaml", "--all", "--yes", timeout=600)
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    live = [j for j in stack.rest.jobs_overview() if j.live]
    assert len(live) == 1 and live[0].id != old_job
    assert_every_id_exactly_once(stack, at_least=committed_before + 60)
    print(f"\ninstalled alone in {installed_s:.0f}s; the whole adoption took {time.monotonic() - started:.0f}s")
