"""`make bench`: regpilot measured side by side with its baselines, on loopback (see run.py)."""
