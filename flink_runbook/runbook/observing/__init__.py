"""What the runbook sees of a cluster: containers, REST, logs, and the findings it draws."""
