"""What the runbook keeps on the host between runs: the lock, the lineage, a person's stops."""
