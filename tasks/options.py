"""The two kinds of task, one definition each: what only looks may retry, what changes the cluster may not."""

from __future__ import annotations

from prefect.cache_policies import NO_CACHE

# Observations must never come from a cache; a retry of a read is harmless.
READ_ONLY = {"cache_policy": NO_CACHE, "retries": 2, "retry_delay_seconds": 1}
# Never retried by Prefect: each step checks the world first (a job already running is not submitted
# again), and the next `recover` run finishes what a failed one left.
CHANGES_CLUSTER = {"cache_policy": NO_CACHE, "retries": 0}
