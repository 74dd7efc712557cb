"""The run's log tells the story: Prefect's own per-task "Finished in state Completed()" lines are kept out.

They go to the same logger as the flow's own task logs (prefect.task_runs), so a filter, not a level,
takes them out; a task that fails still logs its ERROR line, and the run's graph still shows every state.
"""

from __future__ import annotations

import logging

from flink_runbook.redaction import redact_urls


class EngineStateLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and str(record.msg).startswith("Finished in state Completed"))


def keep_engine_lines_out_of_the_way() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, EngineStateLines) for f in logger.filters):
        logger.addFilter(EngineStateLines())


class CredentialsOutOfLogs(logging.Filter):
    """A run's log line with every URL's credentials masked (flink_runbook.redaction): the lines quote REST
    errors, refusals and findings, and those the URLs they came from."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_urls(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


# The loggers of get_run_logger() (flows, tasks) and the serving process's own.
REDACTED_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "flink_runbook")


def keep_credentials_out_of_run_logs() -> None:
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, CredentialsOutOfLogs) for f in logger.filters):
            logger.addFilter(CredentialsOutOfLogs())
