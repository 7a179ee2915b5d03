"""The one error a governance workflow raises when it will not do what was asked."""

from __future__ import annotations


class Refused(Exception):
    """The request cannot be carried out as asked; nothing was changed. The message says why."""
