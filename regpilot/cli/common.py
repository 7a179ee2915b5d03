"""What every command shares: settings, friendly errors, JSON output."""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import click

F = TypeVar("F", bound=Callable[..., Any])

# Tracking URI schemes MLflow itself accepts; anything else is a typo (`htp://`).
TRACKING_SCHEMES = {
    "http",
    "https",
    "databricks",
    "databricks-uc",
    "file",
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
}


# The settings as the user gave them, read before anything else runs: mlflow writes its
# tracking URI back into os.environ once a client exists.
_AS_GIVEN = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "REGPILOT_REDIS_URL")}


class ConfigurationError(Exception):
    """A setting is wrong: the message names it and its value as given."""


def debug_enabled() -> bool:
    """Tell whether `regpilot --debug` asked for tracebacks instead of one-line errors."""
    context = click.get_current_context(silent=True)
    while context is not None:
        if isinstance(context.obj, dict) and context.obj.get("debug"):
            return True
        context = context.parent
    return False


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from config.policy import PolicyError
        from regpilot.core.naming import InvalidModelName
        from regpilot.core.registry_port import RegistryError, TransientRegistryError

        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            if debug_enabled():
                raise
            if isinstance(exc, (PolicyError, InvalidModelName, ConfigurationError)):
                raise click.ClickException(str(exc)) from None
            if isinstance(exc, TransientRegistryError):
                raise click.ClickException(_unreachable_mlflow(exc)) from None
            if isinstance(exc, RegistryError):
                raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
            if isinstance(exc, ValidationError):
                raise click.ClickException(settings_errors(exc)) from None
            handled = _known(exc)
            if handled is None:
                raise click.ClickException(
                    f"unexpected {type(exc).__name__}: {exc} (run `regpilot --debug ...` "
                    "for the traceback)"
                ) from None
            raise click.ClickException(handled) from None

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
    if name == "PartFailed":
        return str(exc.describe())  # type: ignore[attr-defined]
    try:
        import redis

        if isinstance(exc, redis.RedisError):
            return f"{setting_as_given('REGPILOT_REDIS_URL')}: Redis does not answer ({exc})"
    except ImportError:  # pragma: no cover
        pass
    return None


def setting_as_given(name: str, default: str | None = None) -> str:
    """Return `NAME=value` as the user set it (passwords hidden), or say it is unset."""
    value = _AS_GIVEN[name] if name in _AS_GIVEN else os.environ.get(name)
    if value is None:
        if default is None:
            from config.settings import Settings

            field = {
                "MLFLOW_TRACKING_URI": "mlflow_tracking_uri",
                "REGPILOT_REDIS_URL": "redis_url",
            }.get(name)
            default = str(Settings.model_fields[field].default) if field else ""
        return f"{name} (unset; default {default})"
    return f"{name}={hide_password(value)}"


def hide_password(url: str) -> str:
    """Return a URL with its password replaced by `***`."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def tracking_uri_problem(uri: str) -> str | None:
    """Return why a tracking URI cannot work (a typo, no scheme, no host), or None."""
    if not uri.strip():
        return "it is empty; set it to your MLflow server, e.g. http://127.0.0.1:5000"
    if uri in {"databricks", "databricks-uc"}:
        return None
    if re.fullmatch(r"[\w.-]+:\d+(/.*)?", uri):
        return f"it has no scheme; did you mean http://{uri}?"
    parsed = urlparse(uri)
    if not parsed.scheme:
        return None if uri.startswith("/") else "it has no scheme; expected http(s)://host:port"
    if parsed.scheme not in TRACKING_SCHEMES:
        return (
            f"unknown scheme {parsed.scheme!r}; expected http:// or https:// "
            "(or databricks, file, sqlite, postgresql, mysql, mssql)"
        )
    if parsed.scheme in {"http", "https"}:
        if not parsed.hostname:
            return "it has no host; expected http(s)://host:port"
        try:
            parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            return "its port is not a number"
    return None


def check_tracking_uri(config: Any) -> None:
    """Raise ConfigurationError naming MLFLOW_TRACKING_URI when it cannot work."""
    problem = tracking_uri_problem(config.mlflow_tracking_uri)
    if problem:
        raise ConfigurationError(f"{setting_as_given('MLFLOW_TRACKING_URI')}: {problem}")


def _unreachable_mlflow(exc: Exception) -> str:
    from config.settings import Settings

    uri = Settings().mlflow_tracking_uri
    if urlparse(uri).scheme in {"http", "https"}:
        from regpilot.registry.mlflow_http import healthy

        if not healthy(uri, timeout=3):
            return (
                f"{setting_as_given('MLFLOW_TRACKING_URI')}: no MLflow server answers there; "
                "set MLFLOW_TRACKING_URI to your tracking server"
            )
    return f"MLflow call failed ({setting_as_given('MLFLOW_TRACKING_URI')}): {exc}"


def settings_errors(exc: Any) -> str:
    """Return pydantic's settings errors as `NAME=value: problem` lines."""
    from config.settings import env_name

    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error.get("loc") else ""
        try:
            name = env_name(field)
        except KeyError:
            name = field.upper()
        value = os.environ.get(name, error.get("input"))
        if "secret" in field or "token" in field or "password" in field:
            value = "***"
        parts.append(f"{name}={value}: {error['msg']}")
    return "invalid setting " + "; ".join(parts)


POLICY_META = "regpilot.policy_file"


def _remember_policy(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[POLICY_META] = value


def policy_option(func: F) -> F:
    """Add `--policy FILE`: the policy this command reads instead of REGPILOT_POLICY_FILE."""
    return click.option(
        "--policy",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        callback=_remember_policy,
        help="Policy file to use (default: REGPILOT_POLICY_FILE).",
    )(func)


def choice_option(flag: str, choices: Sequence[str], help: str) -> Callable[[F], F]:
    """Return an option that takes one of `choices`, the first being the default `--help` shows."""
    return click.option(
        flag, type=click.Choice(list(choices)), default=choices[0], show_default=True, help=help
    )


def settings() -> Any:
    """Return the Settings (imported lazily so `--help` stays fast), with `--policy` applied."""
    from config.settings import Settings

    context = click.get_current_context(silent=True)
    chosen = context.meta.get(POLICY_META) if context is not None else None
    return Settings(policy_file=chosen) if chosen is not None else Settings()


def registry_from(config: Any) -> Any:
    """Return the registry adapter after checking the tracking URI is usable."""
    check_tracking_uri(config)
    from regpilot.registry import build_registry

    return build_registry(config)


def emit_json(data: Any) -> None:
    """Print machine-readable output."""
    click.echo(json.dumps(data, indent=2, default=str, sort_keys=False))


def private_addresses(host: str) -> list[str]:
    """Return the non-public addresses `host` resolves to (none when it does not resolve)."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return []
    return sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global)
