"""flink-runbook core: Flink REST and Docker clients, config models and decisions.

Nothing in this package imports Prefect; flows/ and tasks/ wrap it.
"""

__version__ = "0.1.0"
