"""The operator's view on the real stack: a risky step waits for a human through Prefect's pause (rejected,
timed out, approved through the API), the on-call channel hears every step through Prefect notification
blocks (Custom Webhook, and Slack's own block pointed at a local endpoint), the report's timeline is seen
in a real headless Chromium, and `flink-runbook status` shows it all.

One Flink release (ONE_VERSION): the gate, the notices and the report do not depend on it; starting a
stopped JobManager and resubmitting from the checkpoint directory are tested on both in test_safety and
test_recover. Screenshots go to SCREENSHOT_DIR (make screenshots: docs/screenshots, named in the README).
"""

from __future__ import annotations

import contextvars
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from apprise.plugins.slack import NotifySlack
from PIL import Image
from prefect.artifacts import Artifact
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.sorting import LogSort
from prefect.flow_runs import resume_flow_run
from prefect.variables import Variable

from flink_runbook.demo import faults
from flink_runbook.demo.job import build_demo_job_jar, committed_ids
from flink_runbook.demo.screenshots import HeadlessChromium, terminal_html
from flink_runbook.flows.recover import recover_flow
from flink_runbook.polling import wait_until
from flink_runbook.runbook.reporting.status import status_lines
from flink_runbook.runbook.reporting.timeline_chart import DONE_COLOUR

from .conftest import ONE_VERSION, _WebhookInbox, assert_every_id_exactly_once, run_demo_job, write_inventory

pytestmark = pytest.mark.integration
FAST = {"recovery": {"stabilization_s": 5, "verify_timeout_s": 90}}
SLACK_URL = "https://hooks.slack.com/services/T0FLINK/B0RUNBOOK/X0TEST"
BLOCKS = ["custom-webhook/flink-runbook-test", "slack-webhook/flink-runbook-test"]


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")


class RecoverRun:
    """The recover flow in a thread of this process (a real run on the real server), so the test can answer it."""

    def __init__(self, inventory: Path, cluster: str) -> None:
        self.state = None
        context = contextvars.copy_context()  # the Prefect server's settings go with it

        def run() -> None:
            self.state = recover_flow(config=str(inventory), cluster=cluster, approval_mode="pause", return_state=True)

        self.thread = threading.Thread(target=context.run, args=(run,), daemon=True)
        self.thread.start()

    def paused_run_id(self, timeout: float = 90):
        def paused():
            with get_client(sync_client=True) as client:
                return [r.id for r in client.read_flow_runs(limit=200) if r.state and r.state.is_paused()]

        (run_id,) = wait_until(paused, lambda ids: len(ids) == 1 or self.state is not None, timeout=timeout,
                               what="the recover run paused for approval")
        return run_id

    def result(self, timeout: float = 300) -> dict:
        self.thread.join(timeout)
        assert self.state is not None, "the recover run did not end"
        outcome = self.state.result(raise_on_failure=False)
        (result,) = outcome.results if hasattr(outcome, "results") else outcome
        return result.to_dict()


def subjects(received: list[dict]) -> list[str]:
    return [m["subject"] for m in received if "subject" in m]


def green_pixels(png: Path) -> int:
    """Pixels of the chart's colour for a done step (the timeline's bars) in a screenshot."""
    want = tuple(int(DONE_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    image = Image.open(png).convert("RGB")
    return sum(
        1 for pixel in image.get_flattened_data() if all(abs(a - b) <= 4 for a, b in zip(pixel, want, strict=True))
    )


@pytest.fixture
def stack_and_jar(start_stack):
    stack = start_stack(ONE_VERSION)
    try:
        yield stack, build_demo_job_jar(ONE_VERSION)
    finally:
        stack.down()


def test_a_risky_step_waits_for_a_human_and_the_incident_is_seen(
    stack_and_jar, prefect_server, webhook_inbox, tmp_path, screenshot_dir, monkeypatch
):
    (stack, demo_job_jar), (inbox_url, received) = stack_and_jar, webhook_inbox
    cluster = stack.settings.project
    payload = {"subject": "{{subject}}", "body": "{{body}}"}
    webhook = CustomWebhookNotificationBlock(name="flink-runbook-test", url=inbox_url, json_data=payload,
                                             allow_private_urls=True)
    webhook.save("flink-runbook-test", overwrite=True)
    SlackWebhook(url=SLACK_URL).save("flink-runbook-test", overwrite=True)
    # Apprise's Slack plugin posts to hooks.slack.com, unreachable here: its webhook_url (the attribute
    # Prefect's GovCloud support sets) points at the local endpoint; block, plugin and payload are Slack's.
    monkeypatch.setattr(NotifySlack, "webhook_url", inbox_url.rsplit("/", 1)[0] + "/services")
    inventory = write_inventory(stack, tmp_path, demo_job_jar, approval="risky", approval_timeout_s=600,
                                notifications={"blocks": BLOCKS}, **FAST)
    run_demo_job(stack, demo_job_jar)
    wait_until(lambda: len(committed_ids(stack.output_dir)), lambda n: n >= 30, timeout=60, what="30 committed ids")
    faults.stop(stack.jobmanager())  # without HA the next JobManager knows no job: starting it is risky
    committed = len(committed_ids(stack.output_dir))

    def unchanged() -> None:
        stack.jobmanager().reload()
        assert stack.jobmanager().status == "exited"  # the JobManager was not started
        assert len(committed_ids(stack.output_dir)) == committed  # and nothing ran

    # 1. Rejected through the API: nothing changes; the cluster is escalated (no asking again every tick).
    rejected = RecoverRun(inventory, cluster)
    run_id = rejected.paused_run_id()
    wait_until(lambda: subjects(received), lambda s: any("waits for your approval" in x for x in s), timeout=30,
               what="the approval-needed notice")
    asked = next(m for m in received if "waits for your approval" in m.get("subject", ""))
    assert f"/runs/flow-run/{run_id}" in asked["body"] and "starts the stopped JobManager container" in asked["body"]
    with HeadlessChromium() as browser:
        browser.screenshot(f"{prefect_server.ui_url}/runs/flow-run/{run_id}", screenshot_dir / "approval-paused.png",
                           "document.body && document.body.innerText.includes('Paused')", full_page=False)
    resume_flow_run(run_id, run_input={"approve": False, "reason": "not at 3 a.m., I am looking"})
    result = rejected.result()
    assert result["status"] == "refused" and result["approval"]["approved"] is False, result
    assert "not approved by a human through Prefect: not at 3 a.m." in result["refusals"][-1]
    assert [a["action"] for a in result["actions"]] == []
    unchanged()
    assert "recovery not approved" in Variable.get(f"flink-escalation-{cluster}")["reason"]

    # 2. Nobody answers: rejected when the time is up, nothing changes, and the run ends as its report says.
    data = yaml.safe_load(inventory.read_text())
    data["clusters"][0]["approval_timeout_s"] = 6
    inventory.write_text(yaml.safe_dump(data))
    ignored = RecoverRun(inventory, cluster)
    ignored.paused_run_id()
    result = ignored.result()
    assert result["status"] == "refused" and result["approval"]["by"] == "nobody", result
    assert result["refusals"][-1].startswith("not approved: no answer within 6 s; nothing was changed"), result
    assert ignored.state.is_failed() and "recovery not done" in ignored.state.message  # ours, not "never resumed"
    unchanged()

    # 3. Approved: the JobManager is started, the job resubmitted from its checkpoint, every id exactly once.
    data["clusters"][0]["approval_timeout_s"] = 600
    inventory.write_text(yaml.safe_dump(data))
    approved = RecoverRun(inventory, cluster)
    run_id = approved.paused_run_id()
    resume_flow_run(run_id, run_input={"approve": True, "reason": "go"})
    result = approved.result()
    assert result["status"] == "recovered", json.dumps(result, indent=1)[-3000:]
    assert result["approval"] == {"approved": True, "by": "a human through Prefect", "reason": "go",
                                  "waited_s": result["approval"]["waited_s"], "asked": True}
    assert [a["action"] for a in result["actions"]][:1] == ["start_jobmanager"]
    assert result["mttr_s"] and result["mttr_s"] >= result["duration_s"] - result["approval"]["waited_s"] - 1
    assert {m["name"] for m in result["milestones"]} >= {"fault observed", "recovered (verified)",
                                                         "job realtime-cdc-demo RUNNING",
                                                         "job realtime-cdc-demo first new checkpoint"}
    assert_every_id_exactly_once(stack, at_least=committed + 40)

    # The channel heard each step, twice: the Custom Webhook's JSON and Slack's own payload.
    said = subjects(received)
    assert sum("waits for your approval" in s for s in said) == 3
    assert sum(f"recovery of {cluster} refused" in s for s in said) == 2
    assert f"flink-runbook: recovering {cluster}" in said
    done = next(m for m in received if m.get("subject", "").startswith(f"flink-runbook: {cluster} recovered, MTTR"))
    assert "Job realtime-cdc-demo:" in done["body"] and "chk-" in done["body"] and f"/runs/flow-run/{run_id}" in done[
        "body"]
    slack = [m for m, path in zip(received, _WebhookInbox.paths, strict=True)
             if path == "/services/T0FLINK/B0RUNBOOK/X0TEST"]
    assert len(slack) == len(said) and all({"attachments", "blocks", "text"} & set(m) for m in slack)
    assert any(f"{cluster} recovered, MTTR" in json.dumps(m) for m in slack)

    # The run's log tells the story first; Prefect's per-task "Finished in state Completed()" lines are out.
    def run_logs():
        with get_client(sync_client=True) as client:
            return client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), sort=LogSort.TIMESTAMP_ASC
            )

    # Logs reach the server in batches: wait for the run's last line.
    logs = wait_until(run_logs, lambda logs: any("Finished in state" in log.message and not log.task_run_id
                                                 for log in logs), timeout=30, what="the run's logs")
    messages = [log.message for log in logs]
    assert any(m.startswith(f"SEEN on {cluster}: ") for m in messages[:4]), messages[:6]
    assert any(m.startswith(f"PLAN for {cluster}: start_jobmanager") for m in messages[:5]), messages[:6]
    assert not [
        m for m, log in zip(messages, logs, strict=True) if log.task_run_id and "Finished in state Completed" in m
    ]
    assert any(m.startswith(f"DONE: recovery of {cluster} recovered in") and "MTTR" in m for m in messages)

    # The incidents: three, newest first, kept in a variable and shown as a table artifact.
    incidents = Variable.get(f"flink-incidents-{cluster}")
    assert [i["result"] for i in incidents] == ["recovered", "refused", "refused"]
    assert Artifact.get(f"incidents-{cluster}").type == "table"

    # The report in the Prefect UI, in a real browser: the timeline chart is there and drawn.
    report = Artifact.get(f"recover-{cluster}")
    assert "![Timeline of the recovery of" in report.data and "MTTR" in report.data
    with HeadlessChromium(width=1400, height=1100) as browser:
        shot = browser.screenshot(
            f"{prefect_server.ui_url}/artifacts/artifact/{report.id}", screenshot_dir / "recovery-report.png",
            "(() => { const i = document.querySelector('img[alt^=\"Timeline of the recovery\"]');"
            " return i && i.complete && i.naturalWidth > 0; })()",
        )
    assert green_pixels(shot) > 1500, "no timeline bars in the screenshot of the report"

    # flink-runbook status: JSON for scripts, plain without a terminal, colours for the screenshot.
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    args = [sys.executable, "-m", "flink_runbook.cli", "status", "--config", str(inventory)]
    out = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (status,) = json.loads(out.stdout)["clusters"]
    assert status["health"] == "healthy" and status["jobs"][0]["state"] == "RUNNING"
    assert status["last_incident"]["result"] == "recovered" and "not approved" in status["escalated"]
    plain = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "\033[" not in plain.stdout and "last incident" in plain.stdout, plain.stderr
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    from flink_runbook.cli.status import read_statuses

    statuses, note = read_statuses(str(inventory), None)
    page = tmp_path / "status.html"
    page.write_text(terminal_html(f"$ flink-runbook status --config {inventory.name}\n"
                                  + "\n".join(status_lines(statuses, colour=True))))
    with HeadlessChromium(width=1100, height=360) as browser:
        browser.screenshot(page.as_uri(), screenshot_dir / "status.png", "document.getElementById('terminal')",
                           full_page=False)
    assert note == "" and time.time()  # every part was read from the server
