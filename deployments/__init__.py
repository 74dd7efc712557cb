"""Deployments: the embedded default (serve, a local Prefect server) and what keeps it from going blind."""
