"""The Flask receiver: verify, parse, dedupe, enqueue, answer in milliseconds."""

from handlers.app import create_app

__all__ = ["create_app"]
