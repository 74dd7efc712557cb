"""Build flink-runbook's own image locally, with no registry: `make image`.

Two layers, each cached by a recipe hash stored as an image label (as demo/image.py does for Flink):
  1. a Debian bookworm root with python3 and tini (mmdebstrap + docker import);
  2. image/Dockerfile on top: a virtualenv with the project's wheel and its runtime dependencies, from a
     wheelhouse made on the host (the daemon and the containers may not reach PyPI; the host may).
The dependencies are pinned to the versions installed beside this code (`pip freeze` of the running
interpreter), so the image runs what the tests ran.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import docker
import docker.errors

from flink_runbook.demo.image import (
    DEBIAN_SUITE,
    RECIPE_LABEL,
    ImageBuildError,
    _debian_image,
    _image_with_recipe,
    _recipe_hash,
    docker_build,
)
from flink_runbook.demo.versions import REPO_ROOT, cache_dir

RUNBOOK_IMAGE_REPO = "flink-runbook/flink-runbook"
PYTHON_IMAGE = f"flink-runbook/debian-python3:{DEBIAN_SUITE}"
# Debian 12's python3 is CPython 3.11.2 (markers such as redis's python_full_version < "3.11.3" count): the
# wheelhouse is made for it, whatever the host runs.
# libstdc++6: manylinux wheels (greenlet, numpy, ...) take it from the system.
PYTHON_PACKAGES = ("python3", "python3-venv", "libstdc++6", "tini", "ca-certificates", "netbase")
DEBIAN_PYTHON = "3.11.2"
WHEEL_TARGET = ("--python-version", DEBIAN_PYTHON, "--implementation", "cp", "--abi", "cp311") + tuple(
    f"--platform={platform}" for platform in ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
)
# The Dockerfile's first stage carries it: that stage's image is removed after the build (it holds the wheelhouse).
INSTALL_STAGE_LABEL = "org.flink-runbook.stage=runbook-install"
# The run-time dependencies and the recovery report's timeline chart (the UI shows it); not the demo's or tests'.
EXTRA = "chart"
IMAGE_DIR = REPO_ROOT / "image"
PYPROJECT = REPO_ROOT / "pyproject.toml"


def project_version() -> str:
    return tomllib.loads(PYPROJECT.read_text())["project"]["version"]


def runbook_image_tag() -> str:
    return f"{RUNBOOK_IMAGE_REPO}:{project_version()}"


def ensure_python_image(client: docker.DockerClient) -> str:
    """Debian + python3 (3.11) + tini; built with mmdebstrap when missing."""
    recipe = _recipe_hash(DEBIAN_SUITE, *PYTHON_PACKAGES)
    return _debian_image(client, PYTHON_IMAGE, recipe, PYTHON_PACKAGES, ['CMD ["python3"]'])


def _source_dirs() -> list[Path]:
    """The directories the project's packages are built from (pyproject's setuptools mapping)."""
    setuptools = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]
    mapped = setuptools.get("package-dir", {})
    tops = {package.split(".")[0] for package in setuptools["packages"]}
    return sorted({REPO_ROOT / d for d in mapped.values()} | {REPO_ROOT / t for t in tops if t not in mapped})


def _source_digest() -> str:
    """What the project's wheel is made of, hashed without building it: a cached lookup costs milliseconds."""
    digest = hashlib.sha256(PYPROJECT.read_bytes())
    for directory in _source_dirs():
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _pinned_versions() -> str:
    """`pip freeze` of the interpreter running this: the versions the image's dependencies are held to."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ImageBuildError(f"pip freeze failed: {result.stderr[-2000:]}")
    return "".join(line + "\n" for line in sorted(result.stdout.splitlines()) if "==" in line)


def _pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(f"pip {' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}")


def dependency_wheelhouse(pins: str) -> Path:
    """The run-time dependencies (and EXTRA's) as CPython 3.11 manylinux wheels, downloaded once per set of pins."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    dependencies = project["dependencies"] + project["optional-dependencies"][EXTRA]
    key = _recipe_hash(pins, *dependencies, *WHEEL_TARGET)
    target = cache_dir() / f"runbook-wheelhouse-{key}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=cache_dir()) as constraints:
        constraints.write(pins)
        constraints.flush()
        wanted = list(dependencies)
        while wanted:  # pip judges markers by the host's interpreter: what only 3.11.2 needs comes next round
            pinned = ["-c", constraints.name, "-d", str(target), *wanted]
            _pip("download", "--quiet", "--only-binary=:all:", *WHEEL_TARGET, *pinned)
            wanted = _needed_on_target_but_missing(target)
    (target / ".complete").touch()
    return target


def _needed_on_target_but_missing(wheelhouse: Path) -> list[str]:
    """Requirements of the wheels in `wheelhouse` that hold on Debian 12's python3 and no wheel there meets."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    target = {**default_environment(), "python_full_version": DEBIAN_PYTHON, "python_version": "3.11"}
    have = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in wheelhouse.glob("*.whl")}
    missing: set[str] = set()
    for wheel in wheelhouse.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            lines = archive.read(metadata).decode(errors="replace").splitlines()
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            requirement = Requirement(line.partition(":")[2].strip())
            holds = requirement.marker is None or requirement.marker.evaluate({**target, "extra": ""})
            if holds and canonicalize_name(requirement.name) not in have:
                missing.add(str(requirement.name) + str(requirement.specifier))
    return sorted(missing)


def ensure_runbook_image(client: docker.DockerClient) -> str:
    """flink-runbook/flink-runbook:<version>, rebuilt only when its recipe (base, Dockerfile, sources, pinned
    dependencies) changed; returns the tag."""
    base = ensure_python_image(client)
    base_id = client.images.get(base).id
    dockerfile = (IMAGE_DIR / "Dockerfile").read_bytes()
    pins = _pinned_versions()
    recipe = _recipe_hash(base_id, dockerfile, _source_digest(), pins)
    tag = runbook_image_tag()
    if _image_with_recipe(client, tag, recipe):
        return tag

    dependencies = dependency_wheelhouse(pins)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as context:
        context_dir = Path(context)
        wheelhouse = context_dir / "wheelhouse"
        shutil.copytree(dependencies, wheelhouse, copy_function=os.link, ignore=shutil.ignore_patterns(".complete"))
        # Built from a copy of the sources: setuptools' build/ and egg-info stay out of the checkout.
        sources = context_dir / "sources"
        sources.mkdir()
        shutil.copy(PYPROJECT, sources / "pyproject.toml")
        shutil.copy(REPO_ROOT / "README.md", sources / "README.md")
        for directory in _source_dirs():
            shutil.copytree(directory, sources / directory.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _pip("wheel", "--quiet", "--no-deps", "-w", str(wheelhouse), str(sources))
        shutil.rmtree(sources)
        shutil.copy(IMAGE_DIR / "Dockerfile", context_dir / "Dockerfile")
        labels = {RECIPE_LABEL: recipe, "org.flink-runbook.version": project_version()}
        docker_build(client, context_dir, tag, base, labels)
    client.images.prune(filters={"dangling": True, "label": INSTALL_STAGE_LABEL})
    return tag


def main(argv: list[str] | None = None) -> int:
    """`python -m flink_runbook.demo image`: build (or find cached) the image, say its tag, size and time."""
    import argparse
    import time

    argparse.ArgumentParser(prog="python -m flink_runbook.demo image", description=__doc__.splitlines()[0]).parse_args(
        argv
    )
    client = docker.from_env()
    started = time.monotonic()
    try:
        tag = ensure_runbook_image(client)
    except (ImageBuildError, docker.errors.DockerException) as exc:
        print(f"image: {exc}", file=sys.stderr)
        return 1
    size_mb = client.images.get(tag).attrs["Size"] / 1e6
    print(f"{tag}: {size_mb:.0f} MB, ready in {time.monotonic() - started:.1f}s (docs/docker-image.md runs it)")
    return 0
