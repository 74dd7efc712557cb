"""What Prefect keeps for flink-runbook, read and written in one place (the shell's records).

flow_runs: recovery history, monitor ticks, open and scheduled runs, their states; variables:
escalations and incidents; slots: concurrency limits and the recovery lock; events: what we post.
Plain functions: tasks, flows, the CLI and the serving process call them (a task wraps one only where
the run's graph should show it). Nothing here reads Prefect's private files: the public client only.
"""
