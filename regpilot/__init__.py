"""regpilot: puts an MLflow model registry on autopilot.

What a training script needs is importable from here, with the standard library only:
`from regpilot import notify_run`.
"""

from regpilot.client import NotifyError, notify_run

__version__ = "0.2.0"

__all__ = ["NotifyError", "__version__", "notify_run"]
