"""Deliver notifications of decisions (Slack, Microsoft Teams, signed webhooks)."""
