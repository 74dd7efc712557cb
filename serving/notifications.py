"""The escalation notification: Prefect automations that post flink.cluster.escalated, and
flink.monitor.stalled (the watchdog's dead man's switch), to a webhook.

An automation (not code in the monitor) so it is visible, testable and editable in
the UI, and so a notification goes out even when the flow that escalated crashed.
"""

from __future__ import annotations

from uuid import UUID

from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

from flink_runbook.runbook.reporting.events import ESCALATED_EVENT, RESOURCE_PREFIX
from flink_runbook.serving.watchdog import MONITOR_RESOURCE_ID, STALLED_EVENT

WEBHOOK_BLOCK_NAME = "flink-runbook-escalation"
ESCALATION_AUTOMATION_NAME = "flink-runbook: notify on escalation"
STALLED_AUTOMATION_NAME = "flink-runbook: notify when the monitor stalls"

SUBJECT = "flink-runbook: {{ event.resource.name }} needs a human"
BODY = (
    "The monitor stopped recovering Flink cluster {{ event.resource.name }} "
    "({{ event.resource['flink.rest-url'] }}): {{ event.payload.reason }}.\n"
    "Findings: {{ event.payload.findings | join('; ') }}\n"
    "Next: run `flink-runbook diagnose --cluster {{ event.resource.name }}`, fix the cause, then "
    "`flink-runbook monitor reset --cluster {{ event.resource.name }}` (or wait until it has been healthy a while)."
)


STALLED_SUBJECT = "flink-runbook: the monitor has stopped watching"
STALLED_BODY = (
    "{{ event.payload.summary }}.\n"
    "No Flink cluster is being checked until monitor ticks complete again. "
    "Next: look at the serving process's log and the monitor deployment's runs in the Prefect UI; "
    "restarting the serving process (`make serve`) marks runs with no process Crashed and frees their slots."
)


def ensure_escalation_notification(webhook_url: str) -> list[UUID]:
    """Create or replace the webhook block and the automations; returns the automations' ids.

    The URL often carries a token: it is kept in the block's secret field (shown masked in the UI) and
    substituted only when a notification is sent.
    """
    block = CustomWebhookNotificationBlock(
        name="flink-runbook",
        url="{{webhook_url}}",
        secrets={"webhook_url": webhook_url},
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    )
    block_id = block.save(WEBHOOK_BLOCK_NAME, overwrite=True)
    with get_client(sync_client=True) as client:
        for name in (ESCALATION_AUTOMATION_NAME, STALLED_AUTOMATION_NAME):
            for existing in client.read_automations_by_name(name):
                client.delete_automation(existing.id)
    escalated = Automation(
        name=ESCALATION_AUTOMATION_NAME,
        description="A Flink cluster was escalated by the monitor's flap protection.",
        trigger=EventTrigger(
            expect={ESCALATED_EVENT},
            match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    ).create()
    stalled = Automation(
        name=STALLED_AUTOMATION_NAME,
        description="No monitor tick has completed for several intervals: nothing watches the clusters.",
        trigger=EventTrigger(
            expect={STALLED_EVENT},
            match={"prefect.resource.id": MONITOR_RESOURCE_ID},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=STALLED_SUBJECT, body=STALLED_BODY)],
    ).create()
    return [escalated.id, stalled.id]
