"""Every flow run named and tagged before it starts (each flow's `flow_run_name`): what it does, on which
cluster, through which door (flink_runbook.runbook.reporting.run_labels says how).

The tags go on the run only, in the same moment: not through Prefect's `tags()` context, whose tags every
task run inherits, and each tagged task asks the server for tag concurrency limits first (one more call
that a busy SQLite server answers 503, retried in 2 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext

from flink_runbook.inventory import load_inventory
from flink_runbook.runbook.reporting.run_labels import Door, clusters_subject, door_of, run_name, run_tags

# The door a caller in this process names for the runs it starts (the fault watcher), with its own tags.
_told: ContextVar[tuple[Door, tuple[str, ...]] | None] = ContextVar("flink_runbook_door", default=None)


@contextmanager
def started_by(door: Door, *tags: str) -> Iterator[None]:
    """The runs of flows called in this block came through `door` (Prefect cannot tell the watcher's from
    the CLI's: neither has a deployment)."""
    token = _told.set((door, tags))
    try:
        yield
    finally:
        _told.reset(token)


def _clusters(parameters: dict) -> list[str]:
    """The clusters a run is about: the one it names, else every one of its inventory (not known: none)."""
    if parameters.get("cluster"):
        return [parameters["cluster"]]
    try:
        return [c.name for c in load_inventory(parameters["config"]).clusters]
    except Exception:  # a bad inventory fails the run itself, with its own message; the name does without
        return []


def labelled(flow: str) -> Callable[[], str]:
    """The `flow_run_name` of a flow: names the run and tags it (one update, before the run starts)."""

    def label() -> str:
        context = FlowRunContext.get()
        run = context.flow_run if context else None
        clusters = _clusters(dict(context.parameters or {}) if context else {})
        name = run_name(flow, clusters_subject(clusters))
        if run is None:
            return name
        told, more = _told.get() or (None, ())
        door = door_of(
            told,
            str(run.deployment_id) if run.deployment_id else None,
            run.created_by.type if run.created_by else None,
            bool(run.auto_scheduled),
        )
        tags = list(dict.fromkeys([*(run.tags or []), *run_tags(clusters, door, *more)]))
        try:
            with get_client(sync_client=True) as client:
                client.update_flow_run(run.id, tags=tags)
        except Exception as exc:  # a run without its tags still does its work
            get_run_logger().warning("run %s not tagged %s: %s", name, ", ".join(tags), exc)
        return name

    return label
