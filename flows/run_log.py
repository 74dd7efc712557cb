"""The run's log tells the story: Prefect's own per-task "Finished in state Completed()" lines are kept out.

They go to the same logger as the flow's own task logs (prefect.task_runs), so a filter, not a level,
takes them out; a task that fails still logs its ERROR line, and the run's graph still shows every state.
"""

from __future__ import annotations

import logging


class EngineStateLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and str(record.msg).startswith("Finished in state Completed"))


def keep_engine_lines_out_of_the_way() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, EngineStateLines) for f in logger.filters):
        logger.addFilter(EngineStateLines())
