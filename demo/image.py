"""Build the demo Flink image locally, with no registry.

Two layers, each cached by a recipe hash stored as an image label so that a
rebuild with nothing changed is a label lookup:
  1. a Debian bookworm root with a Java 17 runtime (mmdebstrap + docker import);
  2. that base plus a Flink distribution from the apache-flink PyPI packages.
The high-availability stack's ZooKeeper is built the same way as the first: a
Debian root with Debian's zookeeper package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
import docker.errors

from flink_runbook.demo.versions import STACK_DIR, cache_dir

RECIPE_LABEL = "org.flink-runbook.recipe"
BASE_IMAGE_REPO = "flink-runbook/debian-jre17"
FLINK_IMAGE_REPO = "flink-runbook/flink"
BASE_PACKAGES = ("openjdk-17-jre-headless", "procps", "mawk", "hostname", "netbase", "ca-certificates")
DEBIAN_SUITE = "bookworm"
IMAGE_DIR = STACK_DIR / "image"
# Parts of the PyPI distribution that a cluster needs (the rest is PyFlink's Python code).
DISTRIBUTION_PARTS = ("bin", "conf", "lib", "opt", "plugins")
# ZooKeeper 3.8 of Debian 12 (it brings its own JRE 17), standalone on 2181, as stack/high-availability.yml runs it.
ZOOKEEPER_IMAGE = f"flink-runbook/zookeeper:{DEBIAN_SUITE}"
ZOOKEEPER_PACKAGES = ("zookeeper", "openjdk-17-jre-headless", "procps", "hostname", "netbase")
ZOOKEEPER_IMAGE_CHANGES = ["EXPOSE 2181", 'CMD ["/usr/share/zookeeper/bin/zkServer.sh", "start-foreground"]']


class ImageBuildError(RuntimeError):
    pass


def _recipe_hash(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _image_with_recipe(client: docker.DockerClient, tag: str, recipe: str) -> bool:
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(RECIPE_LABEL) == recipe


def flink_image_tag(flink_version: str) -> str:
    return f"{FLINK_IMAGE_REPO}:{flink_version}"


def _debian_image(
    client: docker.DockerClient, tag: str, recipe: str, packages: tuple[str, ...], changes: list[str]
) -> str:
    """A Debian root with `packages` (mmdebstrap), imported as `tag` with Dockerfile `changes`; rebuilt
    only when its recipe changed."""
    if _image_with_recipe(client, tag, recipe):
        return tag
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(f"mmdebstrap is not installed (apt-get install mmdebstrap); it builds {tag}")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as workdir:
        rootfs = Path(workdir) / "rootfs.tar"
        command = [
            "mmdebstrap",
            "--variant=essential",
            "--include=" + ",".join(packages),
            DEBIAN_SUITE,
            str(rootfs),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise ImageBuildError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
        repository, _, image_tag = tag.partition(":")
        client.api.import_image(
            src=str(rootfs),
            repository=repository,
            tag=image_tag,
            changes=[f"LABEL {RECIPE_LABEL}={recipe}", *changes],
        )
    return tag


def ensure_base_image(client: docker.DockerClient) -> str:
    """Debian + JRE 17 base image; built with mmdebstrap when missing."""
    recipe = _recipe_hash(DEBIAN_SUITE, *BASE_PACKAGES)
    return _debian_image(client, f"{BASE_IMAGE_REPO}:{DEBIAN_SUITE}", recipe, BASE_PACKAGES, ['CMD ["bash"]'])


def ensure_zookeeper_image(client: docker.DockerClient) -> str:
    """A ZooKeeper server from Debian's zookeeper package, for the high-availability stack
    (stack/high-availability.yml); built with mmdebstrap when missing, like the base image."""
    recipe = _recipe_hash(DEBIAN_SUITE, *ZOOKEEPER_PACKAGES, *ZOOKEEPER_IMAGE_CHANGES)
    return _debian_image(client, ZOOKEEPER_IMAGE, recipe, ZOOKEEPER_PACKAGES, ZOOKEEPER_IMAGE_CHANGES)


def flink_distribution(flink_version: str) -> Path:
    """FLINK_HOME of the given release, installed from PyPI into the cache once."""
    target = cache_dir() / f"flink-{flink_version}"
    home = target / "pyflink"
    marker = target / ".complete"
    if marker.exists():
        return home
    shutil.rmtree(target, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--target",
        str(target),
        f"apache-flink=={flink_version}",
        f"apache-flink-libraries=={flink_version}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(f"installing Flink {flink_version} from PyPI failed: {result.stderr[-2000:]}")
    for script in (home / "bin").iterdir():
        script.chmod(0o755)
    marker.touch()
    return home


def ensure_flink_image(client: docker.DockerClient, flink_version: str) -> str:
    """The demo stack's Flink image for this release; rebuilt only when its recipe changed."""
    base = ensure_base_image(client)
    base_id = client.images.get(base).id
    dockerfile = (IMAGE_DIR / "Dockerfile").read_bytes()
    entrypoint = (IMAGE_DIR / "docker-entrypoint.sh").read_bytes()
    recipe = _recipe_hash(flink_version, base_id, dockerfile, entrypoint)
    tag = flink_image_tag(flink_version)
    if _image_with_recipe(client, tag, recipe):
        return tag

    home = flink_distribution(flink_version)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as context:
        context_dir = Path(context)
        for part in DISTRIBUTION_PARTS:
            # Hard links: the context costs no copy of the ~250 MB distribution.
            shutil.copytree(home / part, context_dir / "flink" / part, copy_function=os.link)
        shutil.copy(IMAGE_DIR / "Dockerfile", context_dir / "Dockerfile")
        shutil.copy(IMAGE_DIR / "docker-entrypoint.sh", context_dir / "docker-entrypoint.sh")
        docker_build(
            client, context_dir, tag, base, {RECIPE_LABEL: recipe, "org.flink-runbook.flink-version": flink_version}
        )
    return tag


def docker_build(client: docker.DockerClient, context_dir: Path, tag: str, base: str, labels: dict[str, str]) -> None:
    """`docker build` of a prepared context on `base` (its BASE_IMAGE argument); the build's last output in
    the error when it fails."""
    log: list[str] = []
    for chunk in client.api.build(
        path=str(context_dir), tag=tag, buildargs={"BASE_IMAGE": base}, labels=labels, rm=True, forcerm=True,
        decode=True,
    ):
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            raise ImageBuildError(f"docker build of {tag} failed: {chunk['error']}\n{''.join(log)[-2000:]}")
