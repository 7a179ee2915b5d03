"""docker-compose.yml, the Dockerfile and .env.example, checked against the code they run.

No Docker engine runs here, so these read the files and hold every name, command, port and URL
in them against the CLI, the settings, the app factory and MLflow's own server variables.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import pytest
import yaml

from config.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
OUR_IMAGE = "regpilot:local"
OURS = sorted(name for name, spec in SERVICES.items() if spec.get("image") == OUR_IMAGE)
REGPILOT_PARTS = ("web", "worker", "evaluator", "beat", "webhook-install")
SETTINGS_ENV = {env_name(field) for field in Settings.model_fields}
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?:[:?-][^}]*)?\}")
SECRET_ENV = {env_name(f) for f, i in Settings.model_fields.items() if "SecretStr" in str(i)}


def _command(service: str) -> list[str]:
    command = SERVICES[service].get("command", [""])
    return list(command) if isinstance(command, list) else shlex.split(command)


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _container_port(service: str) -> int:
    (mapping,) = SERVICES[service]["ports"]
    return int(str(mapping).rsplit(":", 1)[1])


def _healthcheck_url(service: str) -> str:
    test = " ".join(SERVICES[service]["healthcheck"]["test"])
    match = re.search(r"https?://[^'\" ]+", test)
    assert match, f"{service}: healthcheck has no URL: {test}"
    return match.group(0)


def _mlflow_server_env() -> set[str]:
    """Return every environment variable the MLflow server documents (module + CLI)."""
    import mlflow.environment_variables as documented
    from mlflow.cli import server

    names = {
        value.name
        for value in vars(documented).values()
        if type(value).__name__.endswith("EnvironmentVariable")
    }
    names |= {p.envvar for p in server.params if isinstance(p.envvar, str)}
    return names


def test_the_stack_has_every_part_and_one_image_built_here():
    assert {"redis", "postgres", "mlflow", *REGPILOT_PARTS} <= set(SERVICES)
    assert set(REGPILOT_PARTS) | {"mlflow"} <= set(OURS)
    for name in OURS:
        build = SERVICES[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"


def test_redis_persists_with_an_append_only_file():
    argv = _command("redis")
    assert _option(argv, "--appendonly") == "yes"
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


def test_mlflow_runs_on_postgres_with_the_driver_named_and_the_webhook_settings():
    env, argv = _env("mlflow"), _command("mlflow")
    backend = urlparse(INTERPOLATION.sub("from-env", env["MLFLOW_BACKEND_STORE_URI"]))
    assert backend.scheme == "postgresql+psycopg2"
    assert backend.hostname == "postgres" and backend.port == 5432
    postgres = _env("postgres")
    assert backend.username == postgres["POSTGRES_USER"]
    assert backend.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert "${POSTGRES_PASSWORD" in env["MLFLOW_BACKEND_STORE_URI"]
    assert "http" in env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"].split(",")
    assert env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    assert INTERPOLATION.fullmatch(env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"])
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert argv[:2] == ["mlflow", "server"] and _option(argv, "--workers") == "1"
    # MLflow refuses Host headers it does not know; regpilot calls it by its service name.
    assert f"mlflow:{_option(argv, '--port')}" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")


def test_the_image_installs_the_postgres_driver_mlflow_needs():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    match = re.search(r'pip install "\.\[([a-z,]+)\]"', DOCKERFILE)
    assert match, "the Dockerfile must pip install this project with its extras"
    installed = [req for extra in match.group(1).split(",") for req in extras[extra]]
    assert any(req.startswith("psycopg2") for req in installed)


def test_every_regpilot_command_exists_in_the_cli_with_valid_options():
    from regpilot.cli.main import main

    used = [name for name in SERVICES if _command(name)[0] == "regpilot"]
    assert set(used) >= {"worker", "evaluator", "beat", "webhook-install"}
    for name in used:
        args = _command(name)[1:]
        command: click.Command = main
        path = ["regpilot"]
        while isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), args[0])
            assert sub is not None, f"{name}: `{' '.join(path)} {args[0]}` is no command"
            path.append(args.pop(0))
            command = sub
        # Parses options and their types exactly as a run would, without running anything.
        command.make_context(" ".join(path), args)


def test_web_runs_gunicorn_on_the_app_factory_and_its_hooks():
    argv = _command("web")
    assert argv[0] == "gunicorn"
    config = _option(argv, "-c")
    assert config.startswith("python:")
    hooks = importlib.import_module(config.removeprefix("python:"))
    assert callable(hooks.on_starting) and callable(hooks.child_exit)
    module, call = argv[-1].split(":")
    assert call.endswith("()")
    factory = getattr(importlib.import_module(module), call.removesuffix("()"))
    assert callable(factory)
    dockerfile_cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    assert dockerfile_cmd and yaml.safe_load(dockerfile_cmd.group(1)) == argv


def test_celery_commands_name_the_celery_app_module():
    for name in OURS:
        argv = _command(name)
        health = " ".join(SERVICES[name].get("healthcheck", {}).get("test", []))
        for text in (" ".join(argv), health):
            for module in re.findall(r"celery -A ([\w.]+)", text):
                assert importlib.import_module(module).app.main == "regpilot"


def test_ports_agree_between_binds_mappings_healthchecks_and_urls():
    web_port = int(_option(_command("web"), "--bind").rsplit(":", 1)[1])
    assert _container_port("web") == web_port
    assert urlparse(_healthcheck_url("web")).port == web_port
    mlflow_port = int(_option(_command("mlflow"), "--port"))
    assert _container_port("mlflow") == mlflow_port
    assert urlparse(_healthcheck_url("mlflow")).port == mlflow_port
    for name in REGPILOT_PARTS:
        tracking = urlparse(_env(name)["MLFLOW_TRACKING_URI"])
        assert (tracking.hostname, tracking.port) == ("mlflow", mlflow_port)
        redis = urlparse(_env(name)["REGPILOT_REDIS_URL"])
        assert (redis.hostname, redis.port) == ("redis", 6379)
    worker_env = _env("worker")
    assert worker_env["REGPILOT_WORKER_METRICS_PORT"] in [
        str(p) for p in SERVICES["worker"]["expose"]
    ]
    assert worker_env["REGPILOT_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_the_webhook_install_points_mlflow_at_the_web_service():
    from handlers import create_app

    argv = _command("webhook-install")
    url = urlparse(_option(argv, "--url"))
    assert url.hostname == "web" and url.hostname in SERVICES
    assert url.port == int(_option(_command("web"), "--bind").rsplit(":", 1)[1])
    app = create_app(
        Settings(mlflow_webhook_secret="compose-test", redis_url="redis://127.0.0.1:1/0"),
        configure_logging=False,
    )
    assert any(
        rule.rule == url.path and "POST" in rule.methods for rule in app.url_map.iter_rules()
    )
    waits = SERVICES["webhook-install"]["depends_on"]
    assert waits["mlflow"]["condition"] == waits["web"]["condition"] == "service_healthy"
    assert SERVICES["webhook-install"]["restart"] == "no"


def test_every_env_name_is_a_setting_or_an_mlflow_server_variable():
    ours = re.compile(r"^(REGPILOT|MLFLOW|PROMETHEUS|DATABRICKS)_")
    mlflow_server = _mlflow_server_env()
    for name in OURS:
        for key in _env(name):
            if name == "mlflow":
                assert key in mlflow_server, f"mlflow: {key} is no MLflow server variable"
            else:
                assert ours.match(key) and key in SETTINGS_ENV, f"{name}: {key} is no setting"
    for key in re.findall(r"^ENV (\w+)=", DOCKERFILE, re.M):
        assert not ours.match(key) or key in SETTINGS_ENV, key


def test_secrets_come_only_from_the_environment_or_the_git_ignored_env_file():
    for name, spec in SERVICES.items():
        for key, value in (spec.get("environment") or {}).items():
            if key in SECRET_ENV or re.search(r"PASSWORD|SECRET|TOKEN|KEY$", key):
                assert INTERPOLATION.search(str(value)), f"{name}: {key} is written in the file"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    declared = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    used = set(INTERPOLATION.findall((ROOT / "docker-compose.yml").read_text()))
    assert used == declared
    for key in declared & (SECRET_ENV | {"POSTGRES_PASSWORD"}):
        assert re.search(rf"^{key}=$", example, re.M), f".env.example gives {key} a value"


def test_the_long_running_parts_have_healthchecks():
    for name in ("redis", "rabbitmq", "postgres", "mlflow", "web", "worker", "evaluator"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_rabbitmq_is_the_broker_and_redis_keeps_the_state():
    rabbitmq = _env("rabbitmq")
    for name in ("web", "worker", "evaluator", "beat", "flower"):
        broker = urlparse(INTERPOLATION.sub("from-env", _env(name)["REGPILOT_BROKER_URL"]))
        assert broker.scheme == "amqp" and (broker.hostname, broker.port) == ("rabbitmq", 5672)
        assert broker.username == rabbitmq["RABBITMQ_DEFAULT_USER"]
        assert broker.path.lstrip("/") == rabbitmq["RABBITMQ_DEFAULT_VHOST"]
        assert "${RABBITMQ_PASSWORD" in _env(name)["REGPILOT_BROKER_URL"]
        assert urlparse(_env(name)["REGPILOT_REDIS_URL"]).hostname == "redis"
        waits = SERVICES[name]["depends_on"]
        assert waits["rabbitmq"]["condition"] == "service_healthy", name
    assert any(v.endswith(":/var/lib/rabbitmq") for v in SERVICES["rabbitmq"]["volumes"])


def test_registry_work_and_evaluations_have_their_own_workers_and_every_queue_a_consumer():
    from regpilot.cli.service import worker, worker_queues

    roles = {}
    for name in ("worker", "evaluator"):
        argv = _command(name)
        assert argv[:2] == ["regpilot", "worker"]
        roles[name] = worker.make_context("worker", argv[2:]).params["role"]
        health = " ".join(SERVICES[name]["healthcheck"]["test"])
        node = _option(argv, "--hostname").split("@")[0]
        assert f"--destination {node}@" in health, name
    assert roles == {"worker": "registry", "evaluator": "evaluate"}
    settings = Settings(redis_url="redis://redis:6379/0")
    consumed = {q for role in roles.values() for q in worker_queues(settings, role)}
    assert consumed == {settings.task_queue, settings.effective_evaluation_queue}
    # The evaluator's pool processes run one task at a time, each with the same limits.
    assert _option(_command("evaluator"), "--concurrency") == "1"


def test_the_dockerfile_copies_every_package_and_runs_unprivileged():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", DOCKERFILE, re.M))
    roots = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert copied == roots == {"regpilot", "handlers", "tasks", "config"}
    assert re.search(r"^FROM python:3\.11", DOCKERFILE, re.M)
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert user and user[-1] != "root"


def test_mounted_files_exist_in_the_repository():
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name}: {source} does not exist"
            else:
                assert source in COMPOSE["volumes"], f"{name}: volume {source} is not declared"


@pytest.mark.parametrize(
    "template", sorted((ROOT / "handlers" / "ops" / "templates").rglob("*.html"))
)
def test_templates_ship_in_the_package(template):
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = data["package-data"]["handlers"]
    relative = template.relative_to(ROOT / "handlers")
    assert any(relative.match(pattern) for pattern in patterns)


# Settings compose sets for the containers on purpose, and why a value in .env does not win.
WIRED_IN_COMPOSE = {
    "MLFLOW_TRACKING_URI": "the mlflow service's address on the compose network",
    "REGPILOT_REDIS_URL": "the redis service's address on the compose network",
    "REGPILOT_POLICY_FILE": "the mounted policy's path inside the container",
    "REGPILOT_WORKER_METRICS_PORT": "the port the worker's service exposes",
    "REGPILOT_WORKER_METRICS_HOST": "all interfaces, so Prometheus reaches the container",
    "PROMETHEUS_MULTIPROC_DIR": "a private folder inside each container",
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "what the mlflow service is configured with",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "what the mlflow service is configured with",
}


@pytest.mark.parametrize("service", ["web", "worker", "beat", "webhook-install"])
def test_every_setting_in_env_reaches_the_regpilot_services(service):
    # Compose gives `environment:` precedence over `env_file:`: a setting .env carries reaches
    # the container unless compose writes it literally (interpolating ${NAME} takes .env's).
    env_files = SERVICES[service].get("env_file") or []
    assert {"path": ".env", "required": False} in env_files, f"{service} does not read .env"
    for name, value in _env(service).items():
        if name in SETTINGS_ENV and not INTERPOLATION.search(value):
            assert name in WIRED_IN_COMPOSE, f"{service}: {name}={value} hides the .env value"
    assert SETTINGS_ENV  # every field: none is filtered out by a list of names


def test_webhook_install_knows_what_the_mlflow_service_allows():
    from regpilot.cli.webhooks import url_warnings

    mlflow, installer = _env("mlflow"), _env("webhook-install")
    for name in ("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"):
        assert installer[name] == mlflow[name]
    url = _option(_command("webhook-install"), "--url").replace("web", "127.0.0.1")
    settings = Settings(
        mlflow_webhook_allowed_schemes=installer["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"],
        mlflow_webhook_allow_private_ips=installer["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"],
    )
    assert (
        url_warnings(
            url, settings.mlflow_webhook_allowed_schemes, settings.mlflow_webhook_allow_private_ips
        )
        == []
    )
    assert len(url_warnings(url)) == 2  # an MLflow server on its defaults refuses this URL
