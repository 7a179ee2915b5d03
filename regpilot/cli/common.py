"""What every command shares: settings, friendly errors, JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from config.policy import PolicyError
        from regpilot.core.naming import InvalidModelName
        from regpilot.core.registry_port import RegistryError

        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (PolicyError, InvalidModelName) as exc:
            raise click.ClickException(str(exc)) from exc
        except RegistryError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        except ValidationError as exc:
            raise click.ClickException(f"invalid configuration: {exc}") from exc
        except Exception as exc:
            handled = _known(exc)
            if handled is None:
                raise
            raise click.ClickException(handled) from exc

    return wrapper  # type: ignore[return-value]


def _known(exc: Exception) -> str | None:
    name = type(exc).__name__
    if name in {
        "ConfigurationError",
        "NoModelName",
        "NoLoggedModel",
        "NotifyError",
        "RunNotFinished",
        "LockTimeout",
        "Refused",
        "EvaluationInfrastructureError",
        "NoEvaluator",
    }:
        return str(exc)
    try:
        import redis

        if isinstance(exc, redis.RedisError):
            return f"Redis unavailable: {exc}"
    except ImportError:  # pragma: no cover
        pass
    return None


def settings() -> Any:
    """Return the Settings (imported lazily so `--help` stays fast)."""
    from config.settings import Settings

    return Settings()


def emit_json(data: Any) -> None:
    """Print machine-readable output."""
    click.echo(json.dumps(data, indent=2, default=str, sort_keys=False))
