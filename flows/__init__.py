"""Prefect flows: orchestration only, one task call per runbook step."""
