"""The webhook room: one module per source, sharing the intake steps (verify, dedupe, enqueue)."""

from __future__ import annotations

from flask import Flask

from config.settings import Settings
from handlers.webhooks import mlflow, runs


def install(app: Flask, settings: Settings) -> None:
    """Register the webhook endpoints this configuration turns on."""
    app.register_blueprint(runs.blueprint)
    app.register_blueprint(mlflow.blueprint)
    if settings.databricks_enabled:
        from handlers.webhooks import databricks

        app.register_blueprint(databricks.blueprint)
