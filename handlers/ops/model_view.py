"""`GET /ops/models/<name>`: why a model's versions got (or did not get) their aliases.

Read from regpilot's decision records alone (no MLflow call while rendering): each candidate's
latest verdict with its failed checks, the timeline of the champion and challenger aliases, and
the recent decisions, with links to the version in the MLflow UI.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from redis import RedisError

from handlers.errors import Reject
from handlers.ops.auth import Caller, signed_in_page
from handlers.services import services
from regpilot.core.notifications import mlflow_links, run_page_link
from regpilot.core.timeline import alias_moves, judgements

blueprint = Blueprint("ops_model", __name__, template_folder="templates")
DECISIONS_SHOWN = 50


@blueprint.get("/ops/models/<path:name>")
@signed_in_page
def model_view(name: str, caller: Caller) -> ResponseReturnValue:
    """Render one model's verdicts, alias timeline and decisions."""
    ctx = services()
    try:
        records = ctx.store.decisions(name, ctx.store.max_decisions)
    except RedisError as exc:
        raise Reject(503, "Redis does not answer: the decision records cannot be read") from exc
    if not records:
        raise Reject(404, f"no decisions recorded for model {name!r}")
    aliases = ctx.policy.for_model(name).aliases
    ui = ctx.settings.effective_mlflow_ui_url
    rows = [
        (
            judgement,
            mlflow_links(ui, name, judgement.version, None, None).get("version"),
            run_page_link(ui, judgement.run_id),
        )
        for judgement in judgements(records)
    ]
    timelines = {
        alias: list(reversed(alias_moves(records, alias)))
        for alias in (aliases.champion, aliases.challenger)
    }
    # Where each alias points now, as regpilot last moved it (the newest move's target).
    holders = {alias: moves[0].to_version if moves else None for alias, moves in timelines.items()}
    return render_template(
        "ops/model.html",
        name=name,
        model_link=mlflow_links(ui, name, None, None, None).get("model"),
        rows=rows,
        timelines=timelines,
        holders=holders,
        decisions=records[:DECISIONS_SHOWN],
    )
