"""What a training script imports to tell regpilot a run finished (stdlib only)."""

from client.notify import NotifyError, notify_run

__all__ = ["NotifyError", "notify_run"]
