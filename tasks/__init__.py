"""Celery app and thin tasks: take ids, re-read state, decide in core, write through the port."""
