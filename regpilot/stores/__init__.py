"""Redis-backed state: delivery claims, event history, decision records, locks, dead letters."""
