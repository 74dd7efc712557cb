"""The demo realtime-pipeline stack: image, compose stack, demo job, faults.

Used by the tests and by the demo; not needed to run the runbook flows against
a user's own cluster.
"""
