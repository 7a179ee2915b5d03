"""The register-model command family and governance, on a real MLflow server and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from config.settings import Settings, child_environment, settings_environment
from regpilot.cli.main import main
from tests.support import FAILING, PASSING, derive, post, run_webhook, train_run, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

# Policy entries name models exactly; the MLflow server lives for the whole session.
CHAMP = f"champ-{uuid.uuid4().hex[:6]}"
LATENCY = f"latency-{uuid.uuid4().hex[:6]}"
POLICY = f"""
defaults:
  retention: {{keep: 10}}
models:
  {CHAMP}:
    champion: {{metric: test_accuracy, min_improvement: 0.01}}
    auto_promote: true
  {LATENCY}:
    metrics:
      latency_ms: {{max: 50}}
"""
STRICT_POLICY = """
defaults:
  metrics:
    test_accuracy: {min: 0.9}
"""


@pytest.fixture(scope="module")
def cli_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's settings (MLflow, Redis prefix) with this module's policy."""
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(POLICY)
    return derive(settings, policy_file=path)


def unique(prefix: str) -> str:
    """Return a model name no other test uses (the MLflow server lives for the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def cli(settings: Settings, *args: Any, env: dict[str, str] | None = None) -> Result:
    """Run `regpilot ARGS` in-process against the test services; never a traceback."""
    result = CliRunner().invoke(
        main, [str(a) for a in args], env={**settings_environment(settings), **(env or {})}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def ok(settings: Settings, *args: Any) -> Result:
    """Run a command that must succeed."""
    result = cli(settings, *args)
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Result) -> Any:
    """Parse a command's --json output (stdout only: progress goes to stderr)."""
    return json.loads(result.stdout)


def in_a_terminal(settings: Settings, answer: str, *args: str) -> str:
    """Run `regpilot ARGS` on a pseudo-terminal, type `answer` at its prompt; return the output."""
    import pty
    import select

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("regpilot")), *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=child_environment(settings_environment(settings)),
        cwd=ROOT,
    )
    os.close(follower)
    output, answered = b"", False
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError(f"no output for 60 s: {output.decode(errors='replace')}")
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the command exited
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"[y/N]" in output:
            os.write(leader, answer.encode())
            answered = True
    process.wait(timeout=60)
    os.close(leader)
    return output.decode(errors="replace")


def register(settings: Settings, name: str, metrics: dict[str, float], *extra: str) -> int:
    """Train a run and register it through the CLI; return the version."""
    run_id = train_run(metrics)
    result = ok(
        settings, "register-model", "--run-id", run_id, "--model-name", name, "--json", *extra
    )
    return int(as_json(result)["version"])


def snapshot(client: Any, name: str) -> dict[str, Any]:
    """Return everything a read-only command must leave as it was."""
    model = client.get_registered_model(name)
    versions = {}
    for listed in client.search_model_versions(f"name = '{name}'"):
        mv = client.get_model_version(name, listed.version)
        versions[mv.version] = (mv.current_stage, dict(mv.tags), sorted(mv.aliases), mv.description)
    return {"aliases": dict(model.aliases), "versions": versions}


def decisions(store: Any, name: str) -> list[dict[str, Any]]:
    """Return the model's decision history, newest first."""
    return list(store.decisions(name, 1000))


# --- register-model -------------------------------------------------------------------------


def test_register_model_registers_tags_describes_and_prints_details(cli_settings, client, store):
    name = unique("cli-reg")
    run_id = train_run(PASSING)
    args = ["register-model", "--run-id", run_id, "--model-name", name]
    result = ok(
        cli_settings,
        *args,
        "--description",
        "first cut",
        "--tags",
        "team=fraud",
        "owner=me",  # several values after one --tags, as the README writes it
        "--tags",
        "tier=1",
    )
    out = result.stdout
    assert "gate: PASSED" in out
    assert "test_accuracy" in out and ">= 0.85" in out and "0.95" in out
    assert f"registered: {name} version 1 (PASSED)" in out
    assert "aliases moved: challenger" in out
    assert "run id:" in out and run_id in out and "description: first cut" in out

    mv = client.get_model_version(name, "1")
    assert mv.description == "first cut"
    tags = mv.tags
    assert tags["team"] == "fraud" and tags["tier"] == "1" and tags["owner"] == "me"
    assert tags["source_run_id"] == run_id and tags["framework"] == "sklearn"
    assert tags["registration_date"].startswith("20")
    assert json.loads(tags["metadata"])["metrics"]["test_accuracy"] == pytest.approx(0.95)
    assert tags["validation_status"] == "PASSED"
    decision = json.loads(tags["last_decision"])
    assert decision["kind"] == "registration" and decision["by"].startswith("cli:")
    assert all(len(value) <= 1000 for value in tags.values())
    assert "challenger" in mv.aliases
    assert client.get_run(run_id).data.tags["validation_status"] == "PASSED"

    # `explain` by version finds the run behind it, and every decision about either.
    why = as_json(ok(cli_settings, "explain", "--model", name, "--version", "1", "--json"))
    assert why["run_ids"] == [run_id]
    kinds = [d["kind"] for d in why["decisions"]]
    assert "gate" in kinds and "registration" in kinds
    gate = next(d for d in why["decisions"] if d["kind"] == "gate")
    assert gate["checks"][0]["explanation"] == "test_accuracy 0.95 >= 0.85: passed"
    assert why["logged_metrics"] == {run_id: sorted(PASSING)}
    human = ok(cli_settings, "explain", "--run-id", run_id).stdout
    assert f"run {run_id}" in human and "registration" in human
    unknown = cli(cli_settings, "explain", "--run-id", "0" * 32)
    assert unknown.exit_code == 1 and "nothing recorded about run" in unknown.output

    # The same run again: nothing new, the new description applied, exit 0.
    again = ok(cli_settings, *args, "--description", "second look", "--json")
    assert as_json(again)["created"] is False and as_json(again)["version"] == 1
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    assert client.get_model_version(name, "1").description == "second look"

    kinds = [d["kind"] for d in decisions(store, name)]
    assert kinds[-3:] == ["alias", "registration", "gate"]  # oldest last
    assert all(
        d["trigger"]["source"] == "cli" and d["trigger"]["actor"] for d in decisions(store, name)
    )


def test_gate_failure_prints_every_check_exits_nonzero_and_registers_nothing(cli_settings, client):
    name = unique("cli-fail")
    run_id = train_run(FAILING)
    result = cli(cli_settings, "register-model", "--run-id", run_id, "--model-name", name)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    failed = next(line for line in lines if line.strip().startswith("test_accuracy"))
    assert ">= 0.85" in failed and "0.6" in failed and "FAILED" in failed
    assert any(line.strip().startswith("test_recall") and "PASSED" in line for line in lines)
    assert "nothing was registered" in result.stderr
    assert client.search_model_versions(f"name = '{name}'") == []
    assert client.get_run(run_id).data.tags["validation_status"] == "FAILED"

    machine = cli(
        cli_settings, "register-model", "--run-id", run_id, "--model-name", name, "--json"
    )
    assert machine.exit_code == 1
    data = as_json(machine)
    assert data["status"] == "FAILED" and data["registered"] is False
    assert {"name": "test_accuracy", "expected": ">= 0.85", "actual": "0.6"}.items() <= next(
        c for c in data["checks"] if c["name"] == "test_accuracy"
    ).items()


def test_skip_validation_is_recorded_in_the_tags_and_gives_no_challenger(
    cli_settings, client, store
):
    name = unique("cli-skip")
    version = register(cli_settings, name, FAILING, "--skip-validation")
    mv = client.get_model_version(name, str(version))
    assert mv.tags["validation_skipped"] == "true"
    assert mv.tags["validation_status"] == "SKIPPED"
    assert mv.aliases == []
    gate = next(d for d in decisions(store, name) if d["kind"] == "gate")
    assert gate["verdict"] == "SKIPPED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run-id", "0" * 32, "--model-name", "cli-x"], "not found"),
        (["--run-id", "abc", "--model-name", "bad/name"], "invalid model name"),
        (["--run-id", "abc", "--model-name", " padded"], "invalid model name"),
        (["--run-id", "abc", "--model-name", "cli-x", "--tags", "novalue"], "not key=value"),
        (
            ["--run-id", "abc", "--model-name", "cli-x", "--tags", "validation_status=PASSED"],
            "set by regpilot itself",
        ),
        (["--run-id", "abc", "--model-name", "cli-x", "stray"], "unexpected argument(s): stray"),
        (
            ["--run-id", "abc", "--model-name", "cli-x", "--tags", "a=1", "stray"],
            "unexpected argument(s): stray",
        ),
    ],
)
def test_register_model_bad_input_is_a_clear_error(cli_settings, args, message):
    result = cli(cli_settings, "register-model", *args)
    assert result.exit_code != 0
    assert message in result.output


def test_run_without_a_model_is_a_clear_error(cli_settings):
    run_id = train_run(PASSING, log_model=False)
    result = cli(cli_settings, "register-model", "--run-id", run_id, "--model-name", "cli-none")
    assert result.exit_code == 1 and "logged no model" in result.output


# --- details and compare ---------------------------------------------------------------------


def test_details_shows_the_latest_by_version_number_or_the_one_asked_for(cli_settings):
    name = unique("cli-details")
    first = register(cli_settings, name, PASSING, "--description", "one")
    second = register(cli_settings, name, PASSING, "--description", "two")
    ok(cli_settings, "alias", "set", name, "pinned", first)

    latest = as_json(ok(cli_settings, "details", name, "--json"))
    assert latest["version"] == second and latest["description"] == "two"
    assert latest["aliases"] == ["challenger"]
    assert latest["status"] == "READY" and latest["run_id"] and latest["created"].startswith("20")

    shown = ok(cli_settings, "details", name, "--version", first).stdout
    assert "version:     1" in shown and "pinned" in shown and "description: one" in shown
    assert "source_run_id:" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["details", "cli-never-registered"], "registered model 'cli-never-registered' not found"),
        (["compare", "cli-never-registered", "1", "2"], "not found"),
        (["details", "bad/name"], "invalid model name"),
        (["details", "x", "--version", "0"], "Invalid value"),
    ],
)
def test_details_and_compare_failures(cli_settings, args, message):
    result = cli(cli_settings, *args)
    assert result.exit_code != 0 and message in result.output


def test_unknown_version_is_named(cli_settings):
    name = unique("cli-unknown-version")
    register(cli_settings, name, PASSING)
    for args in (["details", name, "--version", "9"], ["compare", name, "1", "9"]):
        result = cli(cli_settings, *args)
        assert result.exit_code == 1 and f"model '{name}' has no version 9" in result.output


def test_compare_shows_a_metric_present_on_one_side_only_as_missing(cli_settings):
    name = unique("cli-compare")
    old = register(cli_settings, name, {**PASSING, "train_loss": 0.4})
    new = register(cli_settings, name, {**PASSING, "test_accuracy": 0.97, "latency_ms": 12.0})
    ok(cli_settings, "alias", "set", name, "champion", old)

    data = as_json(ok(cli_settings, "compare", name, old, new, "--json"))
    rows = {row["metric"]: row for row in data["metrics"]}
    assert rows["latency_ms"] == {
        "metric": "latency_ms",
        "old": None,
        "new": 12.0,
        "delta": None,
        "change": "only in new",
    }
    assert rows["train_loss"]["new"] is None and rows["train_loss"]["change"] == "only in old"
    assert rows["test_accuracy"]["delta"] == pytest.approx(0.02)
    assert rows["test_accuracy"]["change"] == "better"
    assert rows["test_recall"]["delta"] == 0 and rows["test_recall"]["change"] == "same"
    assert data["old"]["aliases"] == ["champion"] and data["new"]["aliases"] == ["challenger"]

    text = ok(cli_settings, "compare", name, old, new).stdout
    latency = next(line for line in text.splitlines() if line.startswith("latency_ms"))
    assert latency.split()[1:4] == ["missing", "12", "-"]
    assert "aliases" in text and "champion" in text and "challenger" in text


# --- aliases, stages and rollback -------------------------------------------------------------


def test_alias_set_and_delete_are_recorded(cli_settings, client, store):
    name = unique("cli-alias")
    version = register(cli_settings, name, PASSING)
    out = ok(cli_settings, "alias", "set", name, "shadow", version).stdout
    assert f"{name}@shadow -> version {version}" in out
    assert client.get_registered_model(name).aliases["shadow"] == str(version)
    decision = json.loads(client.get_model_version(name, str(version)).tags["last_decision"])
    assert decision["kind"] == "alias" and decision["alias"] == "shadow"

    again = ok(cli_settings, "alias", "set", name, "shadow", version, "--json")
    assert as_json(again)["changed"] is False

    deleted = ok(cli_settings, "alias", "delete", name, "shadow")
    assert "pointed at version 1" in deleted.stdout
    assert "shadow" not in client.get_registered_model(name).aliases
    gone = cli(cli_settings, "alias", "delete", name, "shadow")
    assert gone.exit_code == 1 and "has no alias 'shadow'" in gone.output
    kinds = [d["kind"] for d in decisions(store, name)[:2]]
    assert kinds == ["alias_deleted", "alias"]


@pytest.mark.parametrize("bad", ["latest", "v3", "has space", "dot.ted"])
def test_alias_names_the_registry_refuses_are_rejected_first(cli_settings, bad):
    result = cli(cli_settings, "alias", "set", "cli-any", bad, "1")
    assert result.exit_code == 2 and "ALIAS" in result.output


def test_alias_on_unknown_model_or_version_changes_nothing(cli_settings, client):
    name = unique("cli-alias-unknown")
    register(cli_settings, name, PASSING)
    missing_version = cli(cli_settings, "alias", "set", name, "shadow", "7")
    assert missing_version.exit_code == 1 and "has no version 7" in missing_version.output
    assert "shadow" not in client.get_registered_model(name).aliases
    missing_model = cli(cli_settings, "alias", "set", "cli-never-registered", "shadow", "1")
    assert missing_model.exit_code == 1 and "not found" in missing_model.output


def test_transition_moves_stages_and_archives_existing(cli_settings, client, store):
    name = unique("cli-stage")
    first = register(cli_settings, name, PASSING)
    second = register(cli_settings, name, PASSING)
    out = ok(cli_settings, "transition", name, first, "production").stdout
    assert f"{name} version {first}: None -> Production" in out
    ok(cli_settings, "transition", name, second, "Production", "--archive-existing")
    assert client.get_model_version(name, str(first)).current_stage == "Archived"
    assert client.get_model_version(name, str(second)).current_stage == "Production"
    stage = decisions(store, name)[0]
    assert stage["kind"] == "stage" and stage["version"] == second
    assert stage["archive_existing"] is True

    unknown = cli(cli_settings, "transition", name, 9, "Staging")
    assert unknown.exit_code == 1 and "has no version 9" in unknown.output
    bad_stage = cli(cli_settings, "transition", name, first, "Live")
    assert bad_stage.exit_code == 2


def test_transition_on_a_registry_without_stages_says_to_use_aliases(cli_settings, client):
    from config.policy import load_policy
    from regpilot.cli.registry_session import CliContext
    from regpilot.core.registry_port import UNITY_CATALOG_CAPABILITIES, Unsupported
    from regpilot.registry.mlflow_registry import MlflowRegistry
    from regpilot.workflows.governance import transition

    name = unique("cli-nostage")
    version = register(cli_settings, name, PASSING)
    registry = MlflowRegistry(cli_settings.mlflow_tracking_uri)
    registry.capabilities = UNITY_CATALOG_CAPABILITIES  # no stages, as on Unity Catalog
    ctx = CliContext(registry, load_policy(cli_settings.policy_file), cli_settings)
    with pytest.raises(Unsupported, match="use aliases instead"):
        transition(ctx, name, version, "Production", archive_existing=False)
    assert client.get_model_version(name, str(version)).current_stage == "None"


def _uc_cli(cli_settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    # A separate process: MlflowRegistry sets the registry URI globally, and this one must
    # not leak into the other tests. No Databricks host is configured: any call would fail
    # with a different error than the one asserted.
    env = child_environment(
        {
            **settings_environment(cli_settings),
            "MLFLOW_REGISTRY_URI": "databricks-uc",
            "REGPILOT_REDIS_URL": "redis://127.0.0.1:1/0",  # must not be needed either
        }
    )
    for key in [k for k in env if k.startswith("DATABRICKS_")]:
        del env[key]
    return subprocess.run(
        [sys.executable, "-m", "regpilot.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unity_catalog_transition_and_names_are_refused_before_any_call(cli_settings):
    stage = _uc_cli(cli_settings, "transition", "fraud", "3", "Production")
    assert stage.returncode == 1, stage.stderr
    assert "no stages: use aliases instead" in stage.stderr
    assert "regpilot alias set main.ml_models.fraud champion 3" in stage.stderr
    for bad in ("a.b", "main.ml models.x", "c.s.m.extra"):
        named = _uc_cli(cli_settings, "details", bad)
        assert named.returncode == 1 and "invalid Unity Catalog name" in named.stderr
    tag = _uc_cli(
        cli_settings,
        "register-model",
        "--run-id",
        "abc",
        "--model-name",
        "fraud",
        "--tags",
        "team.name=x",
    )
    assert tag.returncode == 2 and "Unity Catalog tag keys" in tag.stderr
    for result in (stage, named, tag):
        assert "Traceback" not in result.stderr


def test_promotion_by_hand_then_rollback_restores_the_previous_champion(
    cli_settings, client, store
):
    name = unique("cli-rollback")
    versions = [register(cli_settings, name, PASSING) for _ in range(3)]
    none_yet = cli(cli_settings, "rollback", name)
    assert none_yet.exit_code == 1 and "no 'champion' alias" in none_yet.output

    ok(cli_settings, "alias", "set", name, "champion", versions[0])
    ok(cli_settings, "alias", "set", name, "champion", versions[2])
    assert client.get_model_version(name, str(versions[2])).tags["previous_champion"] == str(
        versions[0]
    )
    out = ok(cli_settings, "rollback", name).stdout
    assert f"{name}@champion -> version {versions[0]}" in out
    assert client.get_registered_model(name).aliases["champion"] == str(versions[0])
    rolled = decisions(store, name)[0]
    assert rolled["kind"] == "rollback" and rolled["previous"] == versions[2]

    # The first champion has no predecessor: refused, nothing moves.
    nothing = cli(cli_settings, "rollback", name)
    assert nothing.exit_code == 1 and "nothing to roll back to" in nothing.output
    assert client.get_registered_model(name).aliases["champion"] == str(versions[0])


def test_rollback_of_unknown_model_is_a_clear_error(cli_settings):
    result = cli(cli_settings, "rollback", "cli-never-registered")
    assert result.exit_code == 1 and "not found" in result.output


def test_auto_promotion_from_the_cli_uses_the_margin(cli_settings, client):
    name = CHAMP  # policy: champion by test_accuracy, margin 0.01, auto_promote
    first = as_json(
        ok(
            cli_settings,
            "register-model",
            "--run-id",
            train_run(PASSING),
            "--model-name",
            name,
            "--json",
        )
    )
    assert sorted(first["aliases"]) == ["challenger", "champion"]  # no champion yet
    # 0.955 beats 0.95 by less than the margin: the gate itself refuses it.
    close = cli(
        cli_settings,
        "register-model",
        "--run-id",
        train_run({**PASSING, "test_accuracy": 0.955}),
        "--model-name",
        name,
        "--json",
    )
    assert close.exit_code == 1
    check = next(c for c in as_json(close)["checks"] if c["name"] == "champion:test_accuracy")
    assert check["result"] == "FAILED" and check["actual"].endswith("vs v1")
    better_run = train_run({**PASSING, "test_accuracy": 0.97})
    again = ("register-model", "--run-id", better_run, "--model-name", name, "--json")
    assert as_json(ok(cli_settings, *again))["version"] == 2
    model = client.get_registered_model(name)
    assert model.aliases == {"champion": "2", "challenger": "2"}
    assert client.get_model_version(name, "2").tags["previous_champion"] == "1"
    ok(cli_settings, "rollback", name)
    assert client.get_registered_model(name).aliases["champion"] == "1"
    assert client.get_model_version(name, "2").tags["rolled_back"] == "true"
    # The same run again (a redelivery): the rolled-back version is not promoted again.
    assert as_json(ok(cli_settings, *again))["version"] == 2
    assert client.get_registered_model(name).aliases["champion"] == "1"


def test_auto_promotion_through_the_worker_shows_in_history_and_rolls_back(stack, settings, client):
    name = "auto-promote-model"  # tests/fixtures/policy.yaml: margin 0.01, auto_promote
    secret = settings.run_webhook_secrets[0]

    def notify(run_id: str) -> None:
        body, headers = run_webhook(secret, run_id, name)
        assert post(f"{stack['receiver'].url}/webhooks/runs", body, headers)[0] == 202
        wait_until(
            lambda: client.get_run(run_id).data.tags.get("validation_status"), message="verdict"
        )

    notify(train_run(PASSING))
    notify(train_run({**PASSING, "test_accuracy": 0.99}))
    # The verdict is written before the alias moves: wait for the promotion's record.
    from regpilot.stores.redis_store import RedisStore

    wait_until(
        lambda: any(
            d["kind"] == "promotion" and d["version"] == 2
            for d in RedisStore.from_settings(settings).decisions(name)
        ),
        message="promotion recorded",
    )
    assert client.get_registered_model(name).aliases["champion"] == "2"

    shown = ok(settings, "history", name, "--json")
    entries = as_json(shown)["decisions"]
    promotion = next(e for e in entries if e["kind"] == "promotion" and e["version"] == 2)
    assert promotion["trigger"]["source"] == "runs" and promotion["trigger"]["delivery_id"]
    assert promotion["previous"] == 1
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    text = ok(settings, "history", name).stdout
    assert "promotion" in text and "runs:" in text

    ok(settings, "rollback", name)
    assert client.get_registered_model(name).aliases["champion"] == "1"
    newest = ok(settings, "history", name).stdout.splitlines()[2]
    assert "rollback" in newest and "cli:" in newest


# --- retention, validate, backtest -------------------------------------------------------------


def test_retention_dry_run_changes_nothing_then_applies_the_same_plan(cli_settings, client, store):
    name = unique("cli-retention")  # the policy keeps 10: registration prunes nothing here
    versions = [register(cli_settings, name, PASSING) for _ in range(5)]
    ok(cli_settings, "alias", "set", name, "champion", versions[0])
    ok(cli_settings, "alias", "set", name, "champion", versions[2])  # v1 is the rollback target
    ok(cli_settings, "transition", name, versions[1], "Staging")
    before = snapshot(client, name)
    recorded = len(decisions(store, name))

    dry = ok(cli_settings, "retention", name, "--keep", "1", "--dry-run")
    assert "previous champion (the rollback target)" in dry.stdout
    assert "dry run: nothing was changed" in dry.stdout
    machine = as_json(ok(cli_settings, "retention", name, "--keep", "1", "--dry-run", "--json"))
    assert machine["kept"] == [{"version": 5, "reason": "newest 1"}]
    assert {e["version"]: e["reason"] for e in machine["protected"]} == {
        3: "alias champion",
        2: "stage Staging",
        1: "previous champion (the rollback target)",
    }
    assert [e["version"] for e in machine["prune"]] == [4] and machine["applied"] == []
    assert snapshot(client, name) == before
    assert len(decisions(store, name)) == recorded

    refused = cli(cli_settings, "retention", name, "--keep", "1")
    assert refused.exit_code == 1 and "pass --yes" in refused.output
    assert "Nothing was changed" in refused.output
    assert snapshot(client, name) == before  # without a terminal and --yes: nothing applied
    declined = in_a_terminal(cli_settings, "n\n", "retention", name, "--keep", "1")
    assert "archive 1 version(s) of" in declined and "nothing was changed" in declined
    assert snapshot(client, name) == before  # the person said no
    applied = ok(cli_settings, "retention", name, "--keep", "1", "--yes")
    assert applied.stdout.index("retention plan") < applied.stdout.index("archived 1 version")
    assert "archive: 1/1" in applied.stderr
    archived = client.get_model_version(name, "4")
    assert archived.current_stage == "Archived"
    assert archived.tags["retention_status"] == "archived"
    assert json.loads(archived.tags["last_decision"])["kind"] == "retention"
    assert decisions(store, name)[0]["kind"] == "retention"
    for untouched in (1, 2, 3, 5):
        assert client.get_model_version(name, str(untouched)).current_stage != "Archived"
    assert "nothing to do" in ok(cli_settings, "retention", name, "--keep", "1").stdout


def test_retention_of_unknown_model_fails(cli_settings):
    result = cli(cli_settings, "retention", "cli-never-registered", "--dry-run")
    assert result.exit_code == 1 and "not found" in result.output


def test_validate_is_a_dry_run_of_the_gate(cli_settings, client):
    good, bad = train_run(PASSING), train_run(FAILING)
    passed = ok(cli_settings, "validate", "--run-id", good, "--model-name", "cli-validate")
    assert "cli-validate" in passed.stdout and ": PASSED" in passed.stdout

    failed = cli(cli_settings, "validate", "--run-id", bad, "--model-name", "cli-validate")
    assert failed.exit_code == 1 and "FAILED" in failed.stdout and "0.6" in failed.stdout

    # Another model's policy: a `max` bound on a metric the run lacks.
    latency = cli(cli_settings, "validate", "--run-id", good, "--model-name", LATENCY, "--json")
    data = as_json(latency)
    assert latency.exit_code == 1 and data["passed"] is False
    check = next(c for c in data["results"][0]["checks"] if c["name"] == "latency_ms")
    assert check["actual"] == "missing" and check["expected"] == "<= 50"

    for run_id in (good, bad):
        assert "validation_status" not in client.get_run(run_id).data.tags
    assert client.search_model_versions("name = 'cli-validate'") == []

    unknown = cli(cli_settings, "validate", "--run-id", "0" * 32)
    assert unknown.exit_code == 1 and "not found" in unknown.output


def test_policy_backtest_judges_every_version_and_changes_nothing(
    cli_settings, client, store, tmp_path
):
    name = unique("cli-backtest")
    register(cli_settings, name, PASSING)  # 0.95
    register(cli_settings, name, {**PASSING, "test_accuracy": 0.87})
    register(cli_settings, name, FAILING, "--skip-validation")  # 0.6
    before, recorded = snapshot(client, name), len(decisions(store, name))

    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT_POLICY)
    tuned = derive(cli_settings, policy_file=strict)
    data = as_json(ok(tuned, "policy", "backtest", name, "--json"))
    rows = {row["version"]: row for row in data["versions"]}
    assert [row["version"] for row in data["versions"]] == [3, 2, 1]
    assert (rows[1]["recorded"], rows[1]["now"]) == ("PASSED", "PASSED")
    assert (rows[2]["recorded"], rows[2]["now"]) == ("PASSED", "FAILED")
    assert (rows[3]["recorded"], rows[3]["now"]) == ("SKIPPED", "FAILED")
    assert data["would_pass"] == 1
    text = ok(tuned, "policy", "backtest", name).stdout
    assert "1 of 3 version(s) would pass" in text and "Nothing was changed" in text
    assert "test_accuracy 0.87 (expected >= 0.9)" in text

    assert snapshot(client, name) == before
    assert len(decisions(store, name)) == recorded

    unknown = cli(cli_settings, "policy", "backtest", "cli-never-registered")
    assert unknown.exit_code == 1 and "not found" in unknown.output


# --- policy check, history, Redis -------------------------------------------------------------


def test_policy_check_prints_the_effective_policy_per_model(cli_settings, tmp_path):
    data = as_json(ok(cli_settings, "policy", "check", "--json"))
    assert data["valid"] is True
    latency = data["models"][LATENCY]
    assert latency["metrics"]["latency_ms"] == {"max": 50.0}
    assert latency["metrics"]["test_accuracy"] == {"min": 0.85}  # inherited from the defaults
    assert data["models"][CHAMP]["auto_promote"] is True

    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults:\n  retention:\n    keep: 3\n    kepe: 4\n")
    result = cli(cli_settings, "policy", "check", str(broken))
    assert result.exit_code == 1 and f"{broken}:4" in result.output and "kepe" in result.output
    missing = cli(cli_settings, "policy", "check", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 1 and "cannot read policy file" in missing.output


def test_history_without_decisions_and_with_an_invalid_name(cli_settings):
    empty = ok(cli_settings, "history", "cli-never-registered")
    assert "no decisions recorded for cli-never-registered" in empty.stdout
    bad = cli(cli_settings, "history", "bad/name")
    assert bad.exit_code == 1 and "invalid model name" in bad.output


def test_without_redis_reads_work_and_writes_refuse_clearly(cli_settings, client):
    name = unique("cli-noredis")
    version = register(cli_settings, name, PASSING)
    down = derive(cli_settings, redis_url="redis://127.0.0.1:1/0")
    assert ok(down, "details", name).exit_code == 0
    assert ok(down, "retention", name, "--dry-run").exit_code == 0
    for args in (["alias", "set", name, "shadow", str(version)], ["history", name]):
        result = cli(down, *args)
        assert result.exit_code == 1
        assert "Redis at 127.0.0.1:1/0 does not answer" in result.output
    assert "shadow" not in client.get_registered_model(name).aliases


def test_help_and_policy_check_do_not_import_mlflow(cli_settings):
    probe = (
        "import sys\n"
        "from regpilot.cli.main import main\n"
        "for args in (['--help'], ['policy', 'check'], ['register-model', '--help']):\n"
        "    try:\n"
        "        main(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = child_environment(settings_environment(cli_settings))
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    assert os.fspath(cli_settings.policy_file) in result.stdout


# --- the alias timeline -----------------------------------------------------------------------


def test_history_alias_lists_every_move_and_at_answers_who_held_it(cli_settings):
    import time

    name = unique("cli-timeline")
    versions = [register(cli_settings, name, PASSING) for _ in range(2)]
    ok(cli_settings, "alias", "set", name, "champion", versions[0])
    time.sleep(1.1)  # records are stamped to the microsecond; --at is given to the second
    between = time.time()
    time.sleep(1.1)
    ok(cli_settings, "alias", "set", name, "champion", versions[1])
    ok(cli_settings, "rollback", name)

    shown = as_json(ok(cli_settings, "history", name, "--alias", "champion", "--json"))
    moves = [(m["from_version"], m["to_version"], m["kind"]) for m in shown["moves"]]
    assert moves == [
        (None, versions[0], "promotion"),
        (versions[0], versions[1], "promotion"),
        (versions[1], versions[0], "rollback"),
    ]
    assert all(m["by"].startswith("cli:") for m in shown["moves"])
    assert shown["moves"][0]["why"] == "promoted by hand"

    challenger = as_json(ok(cli_settings, "history", name, "--alias", "challenger", "--json"))
    assert [m["to_version"] for m in challenger["moves"]] == versions
    assert challenger["moves"][0]["why"].startswith("passed its gate (run ")

    instant = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(between))
    at = ("history", name, "--alias", "champion", "--at", instant)
    held = as_json(ok(cli_settings, *at, "--json"))
    assert held["version"] == versions[0] and held["move"]["kind"] == "promotion"
    text = ok(cli_settings, "history", name, "--alias", "champion", "--at", instant).stdout
    assert f"version {versions[0]} held 'champion' at " in text
    table = ok(cli_settings, "history", name, "--alias", "champion").stdout
    assert "rolled back" in table and "promoted by hand" in table

    early = ok(cli_settings, "history", name, "--alias", "champion", "--at", "2000-01-01")
    assert "no version held 'champion'" in early.stdout
    bad = cli(cli_settings, "history", name, "--alias", "champion", "--at", "last tuesday")
    assert bad.exit_code == 1 and "not an ISO 8601 time" in bad.output
    lonely = cli(cli_settings, "history", name, "--at", instant)
    assert lonely.exit_code == 1 and "--at needs --alias" in lonely.output
