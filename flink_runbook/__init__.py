"""flink-runbook.

The core is this folder, in wings, with no Prefect import:
  flink/       the Flink REST client, what its answers mean, config options and files
  containers/  the Docker engine: container states, logs, restarts
  runbook/     observe, findings, plan, act, verify, guard, reports
  audit/       configuration audit and its safe fixes
  inventory, polling, text_files: shared by the wings

The shell ships in the same distribution under this namespace from top-level
folders (pyproject.toml's package-dir): flink_runbook.flows (flows/),
flink_runbook.tasks (tasks/), flink_runbook.deployments (deployments/),
flink_runbook.cli (cli/) and the demo harness flink_runbook.demo (demo/).
"""

__version__ = "0.1.0"
