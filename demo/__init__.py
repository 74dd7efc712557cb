"""The demo harness, not product code: the demo stack's image and compose project, the demo job,
fault injection, the drill, and `python -m flink_runbook.demo` (README's first command).

The tests and benchmarks use it too; the runbook's flows never import it.
"""
