"""Apply core decisions through the registry port: shared by the Celery tasks and the CLI."""
