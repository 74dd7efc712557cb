"""The demo streaming job: build its jar, submit it over REST, read its CSV output."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from flink_runbook.demo.image import flink_distribution
from flink_runbook.demo.versions import REPO_ROOT, STACK_DIR, cache_dir
from flink_runbook.flink.answers import JobInfo
from flink_runbook.flink.rest import FlinkRestClient
from flink_runbook.flink.sql_statements import (
    SQL_RUNNER_ENTRY_CLASS,
    checked_statements_of,
    runner_args,
    split_statements,
)
from flink_runbook.polling import wait_until
from flink_runbook.runbook.acting.act import SQL_RUN_TIMEOUT_S

if TYPE_CHECKING:
    from flink_runbook.demo.stack import DemoStack

DEMO_JOB_NAME = "realtime-cdc-demo"
DEMO_ENTRY_CLASS = "flinkrunbook.demo.SequenceToCsvJob"
# The demo's Flink SQL job, beside the jar job: its statements run by the SQL runner in the same jar.
SQL_JOB_NAME = "realtime-sql-demo"
SQL_JOB_FILE = STACK_DIR / "sql" / "realtime-sql-demo.sql"
# As stack/sql/realtime-sql-demo.sql writes them, in the container.
SQL_CONTAINER_OUTPUT_DIR = "/data/sql-output"
SQL_CONTAINER_CHECKPOINT_DIR = "/data/sql-checkpoints"
JOB_SOURCE_DIR = STACK_DIR / "job" / "src"
# Paths as the containers see the shared /data volume.
CONTAINER_OUTPUT_DIR = "/data/output"


class JobBuildError(RuntimeError):
    pass


def job_sources(flink_version: str) -> list[Path]:
    """The demo job's Java files for this release: stack/job/src/, each replaced by the file of the same path
    under stack/job/src-<line>/ for a release line that needs its own (1.18 has no DataGeneratorSource)."""
    line = ".".join(flink_version.split(".")[:2])
    overlay = JOB_SOURCE_DIR.with_name(f"src-{line}")
    sources = []
    for source in sorted(JOB_SOURCE_DIR.rglob("*.java")):
        replacement = overlay / source.relative_to(JOB_SOURCE_DIR)
        sources.append(replacement if replacement.exists() else source)
    return sources


def build_demo_job_jar(flink_version: str) -> Path:
    """Compile the demo job against this Flink release's lib/ and package it; cached by source hash."""
    sources = job_sources(flink_version)
    digest = hashlib.sha256(flink_version.encode())
    for source in sources:
        digest.update(source.read_bytes())
    jar = cache_dir() / f"demo-job-{flink_version}-{digest.hexdigest()[:12]}.jar"
    if jar.exists():
        return jar
    javac = shutil.which("javac")
    if javac is None:
        raise JobBuildError(
            "javac is not installed (apt-get install openjdk-17-jdk-headless); it compiles the demo job"
        )
    classpath = str(flink_distribution(flink_version) / "lib" / "*")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as classes:
        command = [javac, "-nowarn", "--release", "11", "-cp", classpath, "-d", classes, *map(str, sources)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise JobBuildError(f"javac failed for the demo job: {result.stderr[-2000:]}")
        partial = jar.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nMain-Class: {DEMO_ENTRY_CLASS}\n\n")
            for path in sorted(Path(classes).rglob("*.class")):
                archive.write(path, path.relative_to(classes).as_posix())
        partial.rename(jar)
    return jar


def demo_job_args(
    *,
    rate: float = 20,
    checkpoint_interval_ms: int = 2000,
    name: str = DEMO_JOB_NAME,
    output: str = CONTAINER_OUTPUT_DIR,
) -> list[str]:
    return [
        "--output",
        output,
        "--rate",
        str(rate),
        "--checkpoint-interval",
        str(checkpoint_interval_ms),
        "--name",
        name,
    ]


def submit_demo_job(
    rest: FlinkRestClient,
    jar: Path,
    *,
    rate: float = 20,
    checkpoint_interval_ms: int = 2000,
    savepoint_path: str | None = None,
) -> str:
    """Upload the jar and run it, the way restart-flink-cdc-job.sh would; returns the job id."""
    jar_id = rest.upload_jar(jar)
    return rest.run_jar(
        jar_id,
        entry_class=DEMO_ENTRY_CLASS,
        program_args=demo_job_args(rate=rate, checkpoint_interval_ms=checkpoint_interval_ms),
        parallelism=1,
        savepoint_path=savepoint_path,
    )


def committed_ids(output_dir: Path, parts: str = "ids-*.csv") -> list[int]:
    """Ids in the sink's committed part files, in file order (`parts`: the SQL job's sink names them part-*).

    In-progress and pending files start with '.', and are not output yet: the
    file sink publishes a part file only when the checkpoint covering it completes.
    """
    ids: list[int] = []
    if not output_dir.exists():
        return ids
    for part in sorted(output_dir.rglob(parts)):
        if part.name.startswith("."):
            continue
        for line in part.read_text().splitlines():
            if line.strip():
                ids.append(int(line.split(",", 1)[0]))
    return ids


def committed_sql_ids(output_dir: Path) -> list[int]:
    """Ids in the SQL job's committed part files (the filesystem connector's part-<uuid>-<task>-<n>)."""
    return committed_ids(output_dir, "part-*")


def sql_job_statements() -> tuple[str, ...]:
    """The demo SQL job's statements, split and checked as the inventory's loader does."""
    statements = split_statements(SQL_JOB_FILE.read_text())
    checked_statements_of(statements)
    return tuple(s.text for s in statements)


def submit_sql_job(
    rest: FlinkRestClient, jar: Path, savepoint_path: str | None = None, job_id: str | None = None
) -> str:
    """Upload the jar and run its SQL runner with the demo SQL job's statements, as a recovery would."""
    jar_id = rest.upload_jar(jar)
    return rest.patient(SQL_RUN_TIMEOUT_S).run_jar(
        jar_id,
        entry_class=SQL_RUNNER_ENTRY_CLASS,
        program_args=runner_args(SQL_JOB_NAME, sql_job_statements()),
        parallelism=1,
        savepoint_path=savepoint_path,
        job_id=job_id,
    )


def sink_integrity(ids: list[int]) -> tuple[int, int]:
    """(duplicated, missing) for the demo job's ids, which must be exactly 1..N."""
    unique = set(ids)
    return len(ids) - len(unique), (max(unique) - len(unique)) if unique else 0


def wait_for_job_state(rest: FlinkRestClient, job_id: str, states: set[str], timeout: float) -> JobInfo:
    """Poll GET /jobs/:jobid until its state is one of `states`; returns the job details."""
    return wait_until(
        lambda: rest.job(job_id),
        lambda job: job.state in states,
        timeout=timeout,
        interval=0.2,
        what=f"job {job_id} to reach {sorted(states)} at {rest.base_url}",
    )


# The shipped inventory (stack/inventory.yaml) names this stable path.
STABLE_DEMO_JAR = REPO_ROOT / "stack" / "job" / "build" / "realtime-cdc-demo.jar"


def start_demo_job(stack: DemoStack) -> str:
    """Build the demo job for the stack's Flink version, publish the jar at its stable path, run it."""
    jar = build_demo_job_jar(stack.settings.flink_version)
    STABLE_DEMO_JAR.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(jar, STABLE_DEMO_JAR)
    job_id = submit_demo_job(stack.rest, jar)
    wait_for_job_state(stack.rest, job_id, {"RUNNING"}, timeout=60)
    return job_id


def start_sql_job(stack: DemoStack) -> str:
    """Run the demo SQL job (its runner is in the demo job's jar) and wait until it runs."""
    job_id = submit_sql_job(stack.rest, build_demo_job_jar(stack.settings.flink_version))
    wait_for_job_state(stack.rest, job_id, {"RUNNING"}, timeout=60)
    return job_id
