"""What the runbook does to a cluster: one recorded step per runbook action (Docker, REST)."""
