"""The escalation notification: a Prefect automation that posts flink.cluster.escalated to a webhook.

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

from flink_runbook.cluster_events import ESCALATED_EVENT, RESOURCE_PREFIX

WEBHOOK_BLOCK_NAME = "flink-runbook-escalation"
ESCALATION_AUTOMATION_NAME = "flink-runbook: notify on escalation"

SUBJECT = "flink-runbook: {{ event.resource.name }} needs a human"
BODY = (
    "The monitor stopped recovering Flink cluster {{ event.resource.name }} "
    "({{ event.resource['flink.rest-url'] }}): {{ event.payload.reason }}.\n"
    "Findings: {{ event.payload.findings | join('; ') }}\n"
    "Next: run `flink-runbook diagnose --cluster {{ event.resource.name }}`, fix the cause, then "
    "`flink-runbook monitor reset --cluster {{ event.resource.name }}` (or wait until it has been healthy a while)."
)


def ensure_escalation_notification(webhook_url: str) -> UUID:
    """Create or replace the webhook block and the automation; returns the automation's id."""
    block = CustomWebhookNotificationBlock(
        name="flink-runbook",
        url=webhook_url,
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    )
    block_id = block.save(WEBHOOK_BLOCK_NAME, overwrite=True)
    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(ESCALATION_AUTOMATION_NAME):
            client.delete_automation(existing.id)
    automation = Automation(
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
    return automation.id
