"""Local infrastructure: the embedded Prefect server, PostgreSQL, scale-up."""
