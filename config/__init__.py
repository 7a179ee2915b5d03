"""Configuration: the one Settings object and the governance policy."""
