"""The serving process: serve, its fault watcher, its supervision (watchdog, reconcile)."""
