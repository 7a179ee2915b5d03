"""`regpilot serve`, `worker`, `beat`: the production parts, one per process."""

from __future__ import annotations

from typing import Any

import click

from regpilot.cli.common import choice_option, friendly_errors, policy_option, settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers", default=2, show_default=True, type=int, help="gunicorn sync worker processes."
)
@click.option(
    "--insecure-no-signature",
    is_flag=True,
    help="Accept UNSIGNED webhooks when no secret is set. Local play only.",
)
@policy_option
@friendly_errors
def serve(host: str, port: int, workers: int, insecure_no_signature: bool) -> None:
    """Run the webhook receiver under gunicorn (same as gunicorn 'handlers:create_app()')."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    from handlers import create_app, gunicorn_conf
    from regpilot.observability.metrics import use_multiprocess_dir

    config = settings()
    if insecure_no_signature:
        click.echo("WARNING: accepting unsigned webhooks (--insecure-no-signature)", err=True)
        config = type(config)(**{**config.model_dump(), "insecure_no_signature": True})
    create_app(config)  # refuse to start here, with a clear message, if anything is wrong
    # Before the serving apps exist (and after the check above, so a refusal leaves this process
    # as it was): their metrics must go to files all gunicorn workers share.
    use_multiprocess_dir(config.prometheus_multiproc_dir)

    class Receiver(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("timeout", 30)
            self.cfg.set("accesslog", None)
            self.cfg.set("child_exit", gunicorn_conf.child_exit)
            self.cfg.set("logconfig_dict", gunicorn_conf.gunicorn_logconfig(config.log_format))

        def load(self) -> Any:
            return create_app(config)

    click.echo(f"regpilot receiver on http://{host}:{port}", err=True)
    Receiver().run()


@click.command()
@click.option(
    "--concurrency", "-c", default=2, show_default=True, type=int, help="Worker processes."
)
@choice_option("--pool", ["prefork", "solo", "threads"], "Celery pool.")
@click.option("--hostname", default=None, help="Celery node name (default: regpilot@<host>).")
@choice_option(
    "--role",
    ["all", "registry", "evaluate"],
    "Which queues to consume: registry work, model evaluations, or both.",
)
@policy_option
@friendly_errors
def worker(concurrency: int, pool: str, hostname: str | None, role: str) -> None:
    """Run a Celery worker that processes regpilot's queues (registry work, evaluations)."""
    from config.policy import evaluation_dataset_problems, load_policy
    from config.settings import WORKER_SECRETS
    from regpilot.observability.logging import setup_logging

    config = settings()
    problems = config.secret_problems(WORKER_SECRETS)
    if problems:  # before any task is taken: each would fail on the bad credential
        raise click.ClickException("refusing to start: " + "; ".join(problems))
    setup_logging(config.log_format, config.log_level)
    loaded = load_policy(config.policy_file)  # an invalid policy stops it before it takes work
    # A worker that runs evaluations: a golden dataset it cannot read would fail every one.
    unusable = evaluation_dataset_problems(loaded) if role != "registry" else []
    if unusable:
        raise click.ClickException("refusing to start: " + "; ".join(unusable))
    if config.worker_metrics_port is not None:
        _serve_worker_metrics(config)
    from tasks.celery_app import app

    # The tasks read their settings from the app: this command's, `--policy` included.
    app.conf.regpilot_settings = config
    queues = worker_queues(config, role)
    if role != "registry":
        # One huge model must not stay in the next evaluation's process: replace a pool
        # process (after its task) once it holds this much.
        app.conf.worker_max_memory_per_child = config.evaluation_max_memory_per_child
    if role == "evaluate":
        # Not for `all`: restarting registry processes every few tasks costs their imports.
        app.conf.worker_max_tasks_per_child = config.evaluation_max_tasks_per_child
    argv = [
        "worker",
        "-Q",
        ",".join(queues),
        "-c",
        str(concurrency),
        "-P",
        pool,
        "--loglevel",
        config.log_level,
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv += ["-n", hostname]
    if config.log_format == "json":
        argv.insert(0, "--quiet")  # no start-up banner: every line on stdout/stderr is JSON
    app.worker_main(argv)


def worker_queues(config: Any, role: str) -> list[str]:
    """Return the queues a worker of this role consumes."""
    by_role = {
        "registry": [config.task_queue],
        "evaluate": [config.effective_evaluation_queue],
        "all": [config.task_queue, config.effective_evaluation_queue],
    }
    return by_role[role]


def _serve_worker_metrics(config: Any) -> None:
    """Serve the merged metrics of this worker and its pool processes on their own port."""
    from regpilot.observability.metrics import start_exporter, use_multiprocess_dir

    use_multiprocess_dir(config.prometheus_multiproc_dir)  # before the pool forks
    try:
        start_exporter(config.worker_metrics_host, config.worker_metrics_port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve worker metrics on {config.worker_metrics_host}:"
            f"{config.worker_metrics_port}: {exc.strerror or exc}"
        ) from exc


@click.command()
@friendly_errors
def beat() -> None:
    """Run Celery beat: the periodic reconciliation sweep."""
    from regpilot.observability.logging import setup_logging

    config = settings()
    setup_logging(config.log_format, config.log_level)
    from tasks.celery_app import app

    schedule = config.state_dir / "celerybeat-schedule"
    config.state_dir.mkdir(parents=True, exist_ok=True)
    quiet = ["--quiet"] if config.log_format == "json" else []
    app.start([*quiet, "beat", "--loglevel", config.log_level, "-s", str(schedule)])
