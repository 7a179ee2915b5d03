"""The `regpilot` command."""
