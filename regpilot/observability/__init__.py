"""Logs (and later metrics) shared by the receiver, the worker and the CLI."""
