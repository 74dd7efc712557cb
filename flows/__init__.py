"""Prefect flows: orchestration only, one task call per runbook step."""

from flink_runbook.flows.run_log import keep_credentials_out_of_run_logs

# Here, so that every flow (and the tasks it calls) logs through the filter, whichever is imported first.
keep_credentials_out_of_run_logs()
