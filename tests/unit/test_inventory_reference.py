"""docs/inventory.md is what `flink-runbook inventory reference` prints from the model: it cannot drift from
the keys the loader accepts. When the model changes, regenerate it (the failure says how)."""

from __future__ import annotations

import re
from pathlib import Path

from flink_runbook.inventory.reference import COMMAND, inventory_reference

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_reference_is_what_the_model_gives():
    assert (ROOT / "docs" / "inventory.md").read_text() == inventory_reference(), f"regenerate it: {COMMAND}"


def test_every_key_has_a_type_a_default_and_a_meaning():
    rows = [line for line in inventory_reference().splitlines() if line.startswith("| `")]
    keys = [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]
    assert len(keys) == len(set(keys)) > 80
    for row in rows:
        key, kind, default, meaning = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert kind and default and len(meaning) > 10, row
    for nested in ("clusters[].rest.url", "clusters[].jobs[].checkpoint_dir.host", "clusters[].monitor.cooldown_s",
                   "notifications.escalation_webhook_url", "state_dir"):
        assert nested in keys
    assert "| `clusters[].monitor.cooldown_s` | number from 0 to 604800 | `120` |" in inventory_reference()
    assert "| `clusters[].name` | string | required |" in inventory_reference()
