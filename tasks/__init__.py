"""Thin Prefect tasks, one per runbook step; each builds its clients and returns plain data."""
