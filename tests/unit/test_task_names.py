"""Every task a producer sends is registered on the worker's app, with the same argument names."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from regpilot.queue import names
from tasks.celery_app import app

ROOT = Path(__file__).resolve().parents[2]


def _signature(spec: names.TaskSpec) -> inspect.Signature:
    # The function the task was made from (Celery keeps it as the task class's `__wrapped__`);
    # the instance's `run` may be autoretry's wrapper, whose signature depends on import order.
    task = app.tasks[spec.name]
    return inspect.signature(getattr(type(task), "__wrapped__", task.run))


@pytest.mark.parametrize("spec", names.ALL_TASKS, ids=lambda s: s.name)
def test_each_name_is_registered_on_the_worker_with_its_argument_names(spec):
    app.loader.import_default_modules()
    assert spec.name in app.tasks
    parameters = _signature(spec).parameters
    positional = [
        p.name
        for p in parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
    ]
    assert tuple(positional) == spec.args
    if spec is not names.RECONCILE:
        keyword_only = {p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY}
        assert keyword_only == set(names.DELIVERY_KWARGS)


def test_every_registered_regpilot_task_has_a_spec():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith("regpilot.")}
    assert ours == set(names.BY_NAME)


def test_no_task_name_is_spelled_outside_the_names_module():
    spelled = {spec.name for spec in names.ALL_TASKS}
    offenders = []
    for root in ("regpilot", "handlers", "tasks", "config"):
        for path in (ROOT / root).rglob("*.py"):
            if path == ROOT / "regpilot" / "queue" / "names.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in spelled:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_a_message_with_more_arguments_than_the_task_takes_is_refused():
    with pytest.raises(TypeError, match="takes 2 arguments"):
        names.RUN_COMPLETED.arguments("run", "model", "extra")
