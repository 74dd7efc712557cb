"""A Flink SQL job's statements file: split into statements, checked, and handed to the SQL runner.

The runner (stack/job/src/flinkrunbook/sql/SqlStatementsJob.java) is a jar submitted like any other
(POST /jars/:id/run): so a SQL job gets the jar jobs' fixed job id (`jobId`) and restore point
(`savepointPath`) from the JobManager itself, and `pipeline.name` is the job's inventory name. Flink's SQL
Gateway is not part of the distributions the runbook can install (docs/sql-jobs.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SQL_RUNNER_ENTRY_CLASS = "flinkrunbook.sql.SqlStatementsJob"
# What the runbook sets for each submission: a file that sets them would lose the job (another name), start
# it from a point the restore rules did not choose, or give it an id Flink does not refuse twice.
OWNED_KEYS = ("pipeline.name", "execution.savepoint.path", "$internal.pipeline.job-id")
CHECKPOINT_DIR_KEYS = ("execution.checkpointing.dir", "state.checkpoints.dir")
# Statements the runner executes (TableEnvironment.executeSql, SET by the runner itself); the ones that make
# the streaming job are INSERT and EXECUTE STATEMENT SET.
SETUP_KINDS = ("SET", "CREATE", "DROP", "ALTER", "USE", "LOAD", "UNLOAD")
JOB_KINDS = ("INSERT", "EXECUTE STATEMENT SET")
SET_PATTERN = re.compile(r"SET\s+'(?P<key>[^']+)'\s*=\s*'(?P<value>[^']*)'", re.IGNORECASE | re.DOTALL)
STATEMENT_SET_OPEN = re.compile(r"EXECUTE\s+STATEMENT\s+SET\s+BEGIN\b", re.IGNORECASE)
STATEMENT_SET_CLOSED = re.compile(r"\bEND\s*$", re.IGNORECASE)


class SqlStatementsError(ValueError):
    """What is wrong with a statements file, each problem as `line N: what`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Statement:
    text: str  # without comments and the closing semicolon
    line: int  # where it starts in the file (1-based)

    @property
    def kind(self) -> str:
        if STATEMENT_SET_OPEN.match(self.text):
            return "EXECUTE STATEMENT SET"
        return self.text.split(None, 1)[0].upper()


def split_statements(text: str) -> list[Statement]:
    """Statements separated by `;`, outside quotes ('', "", ``) and comments (--, /* */), which are dropped
    (a /*+ hint */ is kept);
    an `EXECUTE STATEMENT SET BEGIN ... END` keeps the semicolons between its INSERTs. An unclosed quote or
    comment is an error naming the line it opens on."""
    statements: list[Statement] = []
    current: list[str] = []
    start_line = line = 1
    i = 0

    def flush() -> None:
        body = "".join(current).strip()
        if body:
            statements.append(Statement(body, start_line))
        current.clear()

    while i < len(text):
        char = text[i]
        if not "".join(current).strip():
            start_line = line
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SqlStatementsError([f"line {line}: a /* comment is not closed"])
            line += text.count("\n", i, end)
            # /*+ ... */ is a hint (OPTIONS, LOOKUP ...), part of the statement; other comments are dropped.
            current.append(text[i : end + 2] if text.startswith("/*+", i) else " ")
            i = end + 2
            continue
        if char in "'\"`":
            end = i + 1
            while True:  # a quote is escaped by doubling it
                end = text.find(char, end)
                if end < 0:
                    raise SqlStatementsError([f"line {line}: a {char} quote is not closed"])
                if text.startswith(char * 2, end):
                    end += 2
                    continue
                break
            current.append(text[i : end + 1])
            line += text.count("\n", i, end)
            i = end + 1
            continue
        if char == ";":
            body = "".join(current).strip()
            if STATEMENT_SET_OPEN.match(body) and not STATEMENT_SET_CLOSED.search(body):
                current.append(char)  # between the INSERTs of a statement set
            else:
                flush()
            i += 1
            continue
        if char == "\n":
            line += 1
        current.append(char)
        i += 1
    flush()
    return statements


def set_options(statements: list[Statement]) -> dict[str, str]:
    """The options the file SETs, the last one of a key winning (as in the runner)."""
    found = {}
    for statement in statements:
        if match := SET_PATTERN.fullmatch(statement.text):
            found[match["key"]] = match["value"]
    return found


def checkpoint_dir_set(statements: list[Statement]) -> str | None:
    """The checkpoint directory the file SETs for its job, if it does (the newer key wins, as in Flink)."""
    options = set_options(statements)
    return next((options[key] for key in CHECKPOINT_DIR_KEYS if key in options), None)


def checked_statements_of(statements: list[Statement]) -> None:
    """SqlStatementsError with every problem, unless each statement is one the runner executes, exactly one
    makes the job, and none sets what the runbook sets."""
    problems = []
    makers = [s for s in statements if s.kind in JOB_KINDS]
    for statement in statements:
        if statement.kind == "SET":
            match = SET_PATTERN.fullmatch(statement.text)
            if match is None:
                problems.append(f"line {statement.line}: write SET as SET 'key' = 'value'")
            elif match["key"] in OWNED_KEYS:
                problems.append(
                    f"line {statement.line}: SET '{match['key']}' is the runbook's to set (the job's name, restore "
                    "point and id come from the inventory and the recovery)"
                )
        elif statement.kind not in SETUP_KINDS + JOB_KINDS:
            problems.append(
                f"line {statement.line}: {statement.kind} is not run by a streaming SQL job; the file holds "
                f"{', '.join(SETUP_KINDS)} statements and one INSERT or EXECUTE STATEMENT SET"
            )
    if not makers:
        problems.append("no INSERT or EXECUTE STATEMENT SET: nothing would make the streaming job")
    elif len(makers) > 1:
        lines = ", ".join(str(s.line) for s in makers)
        problems.append(
            f"lines {lines}: {len(makers)} statements each make a job of the same name; put the INSERTs in one "
            "EXECUTE STATEMENT SET BEGIN ... END"
        )
    if problems:
        raise SqlStatementsError(problems)


def runner_args(job_name: str, statements: tuple[str, ...]) -> list[str]:
    """The SQL runner's program arguments: the job's name (pipeline.name) and each statement in order."""
    args = ["--name", job_name]
    for statement in statements:
        args += ["--statement", statement]
    return args
