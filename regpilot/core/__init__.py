"""Pure decisions: no Flask, Celery, Redis or MLflow imports here."""
