"""Telling the on-call channel: each notice through the cluster's Prefect notification blocks.

A notification that cannot be sent is logged, never raised: a broken Slack webhook must not stop a
recovery half-way.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.blocks.core import Block
from prefect.blocks.notifications import NotificationBlock
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL

from flink_runbook.inventory import ClusterSpec
from flink_runbook.runbook.reporting.notices import Notice


def run_url() -> str | None:
    """This flow run in the Prefect UI, for the message's link; None outside a run or without a UI URL."""
    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run.id}" if base and flow_run.id else None


def wants_notice(cluster: ClusterSpec, event: str) -> bool:
    """Whether any block hears of this event on this cluster (no task run for a notice nobody gets)."""
    return bool(cluster.notifications.blocks) and event in cluster.notifications.events


def send_notice(cluster: ClusterSpec, notice: Notice) -> list[str]:
    """Send to every block of the cluster that wants this event; returns the blocks it reached."""
    if not wants_notice(cluster, notice.event):
        return []
    logger = get_run_logger()
    reached = []
    for name in cluster.notifications.blocks:
        try:
            block = Block.load(name)
            if not isinstance(block, NotificationBlock):
                raise TypeError(f"{type(block).__name__} is not a notification block")
            block.notify(body=notice.body, subject=notice.subject)
            reached.append(name)
        except Exception as exc:  # logged with what to fix; the recovery goes on
            logger.error("Cluster %s: notification %r through block %s failed: %s: %s (check the block in the "
                         "Prefect UI, Blocks)", cluster.name, notice.event, name, type(exc).__name__, exc)
    if reached:
        logger.info("Cluster %s: told %s: %s", cluster.name, ", ".join(reached), notice.subject)
    return reached


notify_operators = task(
    name="notify on-call", task_run_name="notify on-call: {notice.event} on {cluster.name}", cache_policy=NO_CACHE,
    retries=0,
)(send_notice)
