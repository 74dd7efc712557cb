"""The flows' parameter types that Prefect's UI renders as a choice (a dropdown), refusing any other value
before the run starts. What each parameter means is in the flow's docstring (its Args: the UI shows them)."""

from __future__ import annotations

from typing import Literal

# The values of flink_runbook.runbook.deciding.approval.ApprovalMode, as Prefect's schema needs them: a Literal
# (tests/unit/test_recovery_driver.py holds the two together).
ApprovalModeParameter = Literal["pause", "refuse", "yes", "prompt"]
