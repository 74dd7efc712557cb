"""Foundation numbers: image build (cold and cached), stack start-up to job RUNNING,
TaskManager freeze to job FAILED. Prints; asserts nothing.

    .venv/bin/python benchmarks/foundation.py [--cold] [--versions 1.20,2.3]

--cold removes the built images and the downloaded distributions first.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

from flink_runbook.demo import faults
from flink_runbook.demo.image import BASE_IMAGE_REPO, DEBIAN_SUITE, ensure_flink_image, flink_image_tag
from flink_runbook.demo.job import build_demo_job_jar, submit_demo_job, wait_for_job_state
from flink_runbook.demo.stack import DemoStack, StackSettings
from flink_runbook.demo.versions import cache_dir, resolve_flink_version


def timed(label: str, action, *args):
    started = time.monotonic()
    result = action(*args)
    print(f"{label:<48} {time.monotonic() - started:7.1f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--versions", default="1.20,2.3")
    args = parser.parse_args()
    client = docker.from_env()
    versions = [resolve_flink_version(v) for v in args.versions.split(",")]

    if args.cold:
        for tag in [flink_image_tag(v) for v in versions] + [f"{BASE_IMAGE_REPO}:{DEBIAN_SUITE}"]:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
        for version in versions:
            shutil.rmtree(cache_dir() / f"flink-{version}", ignore_errors=True)

    for version in versions:
        timed(
            f"image build {version} ({'cold' if args.cold else 'as cached'})",
            ensure_flink_image,
            client,
            version,
        )
        timed(f"image build {version} (cached)", ensure_flink_image, client, version)
        jar = timed(f"demo job jar {version}", build_demo_job_jar, version)
        with tempfile.TemporaryDirectory() as data:
            stack = DemoStack(
                StackSettings(
                    data_dir=Path(data),
                    project=f"bench-{version.replace('.', '')}",
                    flink_version=version,
                    rest_port=18181,
                ),
                client,
            )
            try:
                started = time.monotonic()
                stack.up()
                job_id = submit_demo_job(stack.rest, jar)
                wait_for_job_state(stack.rest, job_id, {"RUNNING"}, timeout=60)
                print(f"{'stack up -> job RUNNING ' + version:<48} {time.monotonic() - started:7.1f} s", flush=True)
                time.sleep(5)
                frozen = time.monotonic()
                faults.freeze(stack.taskmanager())
                wait_for_job_state(stack.rest, job_id, {"FAILED"}, timeout=120)
                print(f"{'freeze TaskManager -> job FAILED ' + version:<48} {time.monotonic() - frozen:7.1f} s")
            finally:
                stack.down()


if __name__ == "__main__":
    main()
