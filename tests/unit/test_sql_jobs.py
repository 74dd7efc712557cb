"""Flink SQL jobs: the statements file split and checked, its inventory entry validated (file, key and line
named), and its resubmission: the SQL runner's jar run with the job's name and statements, from the restore
point, under the recovery's job id."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flink_runbook.demo.job import SQL_JOB_FILE, SQL_JOB_NAME
from flink_runbook.demo.versions import STACK_DIR
from flink_runbook.flink.answers import JobState, JobSummary
from flink_runbook.flink.sql_statements import (
    SQL_RUNNER_ENTRY_CLASS,
    SqlStatementsError,
    checked_statements_of,
    checkpoint_dir_set,
    split_statements,
)
from flink_runbook.inventory import CheckpointDir, InventoryError, JobSpec, load_inventory
from flink_runbook.runbook.acting.act import SQL_RUN_TIMEOUT_S, submit_job
from flink_runbook.runbook.deciding.plan import plan_recovery
from flink_runbook.runbook.deciding.restore_point import RestorePoint, list_retained_checkpoints
from flink_runbook.runbook.observing.diagnosis import diagnose
from flink_runbook.runbook.observing.observe import JobView

from .recorded import recorded_job
from .test_findings import CLUSTER, observed
from .test_recovery_plan import jm_container, retain, tm_container, with_containers

JOB = """\
CREATE TABLE s (id BIGINT) WITH ('connector' = 'datagen');
CREATE TABLE t (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO t SELECT id FROM s;
"""


def statements(text: str) -> list[str]:
    return [s.text for s in split_statements(text)]


def test_semicolons_in_quotes_and_comments_do_not_end_a_statement():
    text = """
    -- a comment; not a statement
    SET 'pipeline.operator-chaining' = 'true';  /* also; a comment */
    CREATE TABLE s (`a;b` STRING) WITH ('connector' = 'datagen', 'x' = 'it''s; fine');
    INSERT INTO t SELECT "x;y" FROM s
    """
    assert statements(text) == [
        "SET 'pipeline.operator-chaining' = 'true'",
        "CREATE TABLE s (`a;b` STRING) WITH ('connector' = 'datagen', 'x' = 'it''s; fine')",
        'INSERT INTO t SELECT "x;y" FROM s',
    ]


def test_a_hint_is_kept_other_comments_are_dropped():
    text = "INSERT INTO t /* why; */ SELECT id FROM s /*+ OPTIONS('rows-per-second' = '5') */;"
    assert statements(text) == ["INSERT INTO t   SELECT id FROM s /*+ OPTIONS('rows-per-second' = '5') */"]


def test_a_statement_set_keeps_its_inserts_together_and_lines_are_counted():
    text = "CREATE TABLE a (x INT);\n\nEXECUTE STATEMENT SET BEGIN\n  INSERT INTO b SELECT * FROM a;\n" \
        "  INSERT INTO c SELECT * FROM a;\nEND;\n"
    first, second = split_statements(text)
    assert (first.line, second.line, second.kind) == (1, 3, "EXECUTE STATEMENT SET")
    assert second.text.startswith("EXECUTE STATEMENT SET BEGIN") and second.text.endswith("END")
    assert second.text.count("INSERT") == 2
    checked_statements_of([first, second])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("INSERT INTO t SELECT 'open", "line 1: a ' quote is not closed"),
        ("/* never closed\nINSERT INTO t SELECT 1", "line 1: a /* comment is not closed"),
    ],
)
def test_an_unclosed_quote_or_comment_names_its_line(text, problem):
    with pytest.raises(SqlStatementsError, match=problem.replace("*", r"\*")):
        split_statements(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (JOB + "SET 'pipeline.name' = 'other';", "line 4: SET 'pipeline.name' is the runbook's to set"),
        ("SET 'execution.savepoint.path' = '/x';\n" + JOB, "line 1: SET 'execution.savepoint.path' is the runbook's"),
        ("SET '$internal.pipeline.job-id' = 'a';\n" + JOB, r"line 1: SET '\$internal.pipeline.job-id' is the runbook"),
        (JOB + "SELECT * FROM s;", "line 4: SELECT is not run by a streaming SQL job"),
        (JOB + "SET pipeline.name = x;", "line 4: write SET as SET 'key' = 'value'"),
        ("CREATE TABLE s (id BIGINT);", "no INSERT or EXECUTE STATEMENT SET"),
        (JOB + "INSERT INTO t SELECT 2;", "lines 3, 4: 2 statements each make a job of the same name"),
    ],
)
def test_a_file_the_runner_cannot_run_as_one_job_is_refused(text, problem):
    with pytest.raises(SqlStatementsError, match=problem):
        checked_statements_of(split_statements(text))


def test_the_demo_sql_job_is_valid_and_writes_its_own_checkpoint_directory():
    found = split_statements(SQL_JOB_FILE.read_text())
    checked_statements_of(found)
    assert checkpoint_dir_set(found) == "file:///data/sql-checkpoints"
    assert [s.kind for s in found][-1] == "INSERT"


INVENTORY = """
clusters:
  - name: pipeline
    rest: {{url: "http://127.0.0.1:8081"}}
    containers: {{compose_project: pipeline}}
    jobs:
      - name: cdc-sql
{job}
"""


def inventory(tmp_path: Path, job: str, sql: str | None = JOB) -> Path:
    if sql is not None:
        (tmp_path / "job.sql").write_text(sql)
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY.format(job=textwrap.indent(textwrap.dedent(job), " " * 8)))
    return path


def test_a_sql_job_loads_with_its_statements_and_the_runners_class(tmp_path):
    (cluster,) = load_inventory(inventory(tmp_path, "sql: job.sql\njar: runner.jar\n")).clusters
    (job,) = cluster.jobs
    assert job.sql == tmp_path / "job.sql" and job.entry_class == SQL_RUNNER_ENTRY_CLASS
    assert len(job.sql_statements) == 3
    assert job.program_args[:2] == ["--name", "cdc-sql"]
    assert job.program_args[2::2] == ["--statement"] * 3 and job.program_args[-1] == "INSERT INTO t SELECT id FROM s"


def test_the_shipped_stack_inventory_lists_the_sql_job():
    (cluster,) = load_inventory(STACK_DIR / "inventory.yaml").clusters
    job = cluster.job(SQL_JOB_NAME)
    assert job.sql == SQL_JOB_FILE and job.checkpoint_dir.container == "/data/sql-checkpoints"


@pytest.mark.parametrize(
    ("job", "sql", "problem"),
    [
        ("sql: missing.sql\njar: r.jar\n", None, r"jobs\[0\]\.sql: .*missing\.sql: cannot read"),
        ("sql: job.sql\n", JOB, r"jobs\[0\]\.jar: a SQL job needs jar"),
        ("sql: job.sql\njar: r.jar\nargs: [--x, 1]\n", JOB, r"jobs\[0\]\.args: a SQL job takes no args"),
        ("sql: job.sql\njar: r.jar\nresubmit_command: [x]\n", JOB, r"jobs\[0\]\.resubmit_command: a SQL job is"),
        ("sql: job.sql\njar: r.jar\n", JOB + "SELECT 1;", r"jobs\[0\]\.sql: .*job\.sql: line 4: SELECT is not run"),
        (
            "sql: job.sql\njar: r.jar\ncheckpoint_dir: {container: /data/checkpoints}\n",
            "SET 'execution.checkpointing.dir' = 'file:///data/sql-checkpoints';\n" + JOB,
            r"job\.sql: SETs the checkpoint directory 'file:///data/sql-checkpoints' but "
            r"clusters\[0\]\.jobs\[0\]\.checkpoint_dir\.container is '/data/checkpoints'",
        ),
    ],
)
def test_a_bad_sql_job_names_the_key_and_the_file(tmp_path, job, sql, problem):
    with pytest.raises(InventoryError, match=problem) as caught:
        load_inventory(inventory(tmp_path, job, sql))
    assert str(tmp_path / "inventory.yaml") in str(caught.value)


def test_the_cli_refuses_a_bad_sql_file_with_exit_2_and_no_traceback(tmp_path):
    path = inventory(tmp_path, "sql: job.sql\njar: r.jar\n", "INSERT INTO t SELECT 'open")
    result = subprocess.run(
        [sys.executable, "-m", "flink_runbook.cli", "inventory", "check", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "clusters[0].jobs[0].sql:" in result.stderr and "line 1: a ' quote is not closed" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


class FakeRest:
    """The JobManager's REST client as submit_job uses it: jobs, an upload, a run (in memory)."""

    def __init__(self, jobs: list[JobSummary] = ()) -> None:
        self.jobs, self.runs, self.patience = list(jobs), [], None

    def patient(self, read_timeout_s: float) -> FakeRest:
        self.patience = read_timeout_s
        return self

    def live_jobs_named(self, name: str) -> list[JobSummary]:
        return [j for j in self.jobs if j.name == name and j.live]

    def upload_jar(self, jar: Path) -> str:
        return f"uploaded-{jar.name}"

    def run_jar(self, jar_id: str, **body) -> str:
        self.runs.append((jar_id, body))
        return body["job_id"]


def test_a_sql_job_is_resubmitted_by_its_runner_from_the_restore_point_under_the_recoverys_id(tmp_path):
    (tmp_path / "runner.jar").write_bytes(b"jar")
    (cluster,) = load_inventory(inventory(tmp_path, "sql: job.sql\njar: runner.jar\n")).clusters
    rest = FakeRest()
    point = RestorePoint("file:/data/sql-checkpoints/abc/chk-7", 7, "checkpoint", "checkpoint directory")
    submission = submit_job(rest, cluster.job("cdc-sql"), point, job_id="f" * 32)
    ((jar_id, body),) = rest.runs
    assert jar_id == "uploaded-runner.jar" and submission.job_id == "f" * 32
    assert body["entry_class"] == SQL_RUNNER_ENTRY_CLASS and body["savepoint_path"] == point.path
    assert body["program_args"] == cluster.job("cdc-sql").program_args
    assert "with the SQL statements of job.sql" in submission.how
    # The JobManager plans the SQL before it answers the run: waited for longer than a read.
    assert rest.patience == SQL_RUN_TIMEOUT_S


def test_a_sql_job_already_running_under_its_name_is_not_submitted_again(tmp_path):
    (cluster,) = load_inventory(inventory(tmp_path, "sql: job.sql\njar: runner.jar\n")).clusters
    running = JobSummary(id="a" * 32, name="cdc-sql", state=JobState.RUNNING, start_time_ms=1)
    rest = FakeRest([running])
    submission = submit_job(rest, cluster.job("cdc-sql"), None, job_id="f" * 32)
    assert rest.runs == [] and submission.job_id == "a" * 32


def test_after_a_jobmanager_restart_each_job_is_planned_from_its_own_lineage_and_directory(tmp_path):
    """A SQL job beside the jar job: each resubmission takes the newest checkpoint of its own lineage in its
    own directory, under a job id of its own (recorded 1.20.3 answers: the JobManager knows neither job)."""
    (tmp_path / "job.sql").write_text(JOB)
    jar_job = JobSpec(name="realtime-cdc-demo", checkpoint_dir=CheckpointDir(tmp_path / "jar", "/data/checkpoints"))
    sql_job = JobSpec(
        name="cdc-sql",
        sql=tmp_path / "job.sql",
        checkpoint_dir=CheckpointDir(tmp_path / "sql", "/data/sql-checkpoints"),
    )
    cluster = dataclasses.replace(CLUSTER, jobs=(jar_job, sql_job))
    retain(tmp_path / "jar", "a" * 32, 7, 100.0)
    retain(tmp_path / "sql", "b" * 32, 4, 100.0)
    retain(tmp_path / "sql", "c" * 32, 9, 200.0)  # another job's run in that directory: not in its lineage
    seen = dataclasses.replace(
        with_containers(observed("1.20.3", "healthy"), jm_container(), tm_container("running", ip="172.28.0.3")),
        jobs=(JobView(name=jar_job.name, info=None), JobView(name=sql_job.name, info=None)),
    )
    retained = {job.name: list_retained_checkpoints(job.checkpoint_dir.host) for job in cluster.jobs}
    lineage = {jar_job.name: ("a" * 32,), sql_job.name: ("b" * 32,)}
    plan = plan_recovery(cluster, diagnose(cluster, seen), retained, lineage)
    resubmits = {a.target: a for a in plan.resubmits}
    assert resubmits[jar_job.name].restore_point.path == f"file:/data/checkpoints/{'a' * 32}/chk-7"
    assert resubmits[sql_job.name].restore_point.path == f"file:/data/sql-checkpoints/{'b' * 32}/chk-4"
    assert resubmits[jar_job.name].job_id != resubmits[sql_job.name].job_id


@pytest.mark.parametrize(("state", "free_slots"), [(JobState.RESTARTING, 0), (JobState.FAILED, 2)])
def test_jobs_flink_restarts_by_themselves_are_not_waited_for_as_free_slots(state, free_slots):
    """Two jobs fill the TaskManager's two slots: after an unpause Flink restarts both into them, and a wait for
    two free slots would never end (the drill with the SQL job beside the jar job did, for 120 s). A job that
    FAILED gave its slots back: those are waited for."""
    cluster = dataclasses.replace(CLUSTER, jobs=(JobSpec(name="realtime-cdc-demo"), JobSpec(name="cdc-sql")))
    job = dataclasses.replace(recorded_job("1.20.3", "failed-heartbeat-timeout"), state=state)
    seen = dataclasses.replace(
        with_containers(observed("1.20.3", "healthy"), jm_container(), tm_container("running", ip="172.28.0.3")),
        jobs=tuple(JobView(name=spec.name, info=dataclasses.replace(job, name=spec.name)) for spec in cluster.jobs),
    )
    plan = plan_recovery(cluster, diagnose(cluster, seen))
    (wait,) = plan.of("wait_for_taskmanagers")
    assert wait.free_slots == free_slots
    assert {a.target for a in plan.resubmits} == {"realtime-cdc-demo", "cdc-sql"}
