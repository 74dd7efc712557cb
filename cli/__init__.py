"""The `flink-runbook` command: a door above the flows (like serve, a worker or the UI), not part of the core."""
