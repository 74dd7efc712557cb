"""What the runbook decides from what it saw: the plan, the restore point, the approval gate, the guard
rails, the verdict, and the recovery driver that runs them in the runbook's order."""
