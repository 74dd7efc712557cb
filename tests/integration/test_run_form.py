"""The recover deployment's custom-run form in Prefect's UI: approval_mode a dropdown of its four modes, every
field described by the flow's docstring (its Args:). Checked on a real Prefect server, in the parameter schema
Prefect stored and on the page a real headless Chromium renders (the screenshot README shows).

No Flink stack: the deployment is only registered, never served or run.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from flink_runbook.demo.screenshots import BrowserError, HeadlessChromium
from flink_runbook.flows.parameters import ApprovalModeParameter
from flink_runbook.flows.recover import recover_flow
from flink_runbook.infrastructure.local_server import LocalPrefectServer

pytestmark = pytest.mark.integration
APPROVAL_MODES = list(typing.get_args(ApprovalModeParameter))
DESCRIBED = ["cluster", "config", "dry_run", "guarded", "all_clusters", "approval_mode"]


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")


def test_the_recover_run_form_offers_the_approval_modes_and_describes_each_field(
    prefect_server: LocalPrefectServer, screenshot_dir: Path
) -> None:
    # Registered only (no runner): the form is the deployment's, whatever serves it later.
    deployment_id = recover_flow.to_deployment(name="recover-run-form-test").apply()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
    fields: dict[str, dict] = deployment.parameter_openapi_schema["properties"]

    # A plain `str` approval_mode would give a free text box: no enum, and any typo accepted.
    assert APPROVAL_MODES == ["pause", "refuse", "yes", "prompt"]
    assert fields["approval_mode"].get("enum") == APPROVAL_MODES, fields["approval_mode"]
    assert fields["approval_mode"]["default"] == "pause"
    for name in DESCRIBED:
        assert fields[name].get("description", "").strip(), f"{name} has no description in the form: {fields[name]}"
    assert deployment.parameter_openapi_schema["required"] == ["config"]

    # The page the UI's "Custom run" opens, as an operator sees it: each description shown, and approval_mode
    # a dropdown (a <select>) offering exactly the four modes. The browser waits for all of that, or fails.
    described = [" ".join(fields[name]["description"].split()) for name in DESCRIBED]
    ready = (
        "(() => { const text = document.body ? document.body.innerText : '';"
        f" if (!text.includes('approval_mode') || !{json.dumps(described)}.every(d => text.includes(d)))"
        " return false;"
        " return [...document.querySelectorAll('select')].some(s =>"
        f" [...s.options].map(o => o.value).join() === {json.dumps(','.join(APPROVAL_MODES))}); }})()"
    )
    try:
        with HeadlessChromium(width=1400, height=1260) as browser:  # tall enough for the whole form
            shot = browser.screenshot(
                f"{prefect_server.ui_url}/deployments/deployment/{deployment_id}/run",
                screenshot_dir / "recover-run-form.png",
                ready,
                full_page=False,
            )
    except BrowserError as exc:
        pytest.fail(f"the run form does not show the described fields and the approval_mode dropdown: {exc}")
    assert shot.stat().st_size > 20_000, "an almost empty screenshot of the run form"
