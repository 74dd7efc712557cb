"""What the runbook says: reports, notices, events, the status view."""
