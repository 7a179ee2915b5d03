"""The governance policy file: per-model gate, aliases and retention, with inheritance."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from regpilot.core.gate import ChampionRule, Direction, GateRules, Threshold
from regpilot.core.notifications import EVENT_TYPES, destination_url_problem
from regpilot.core.retention import PruneAction, RetentionRules
from regpilot.evaluation.dataset import DatasetError, check_header
from regpilot.evaluation.decide import LOWER_IS_BETTER
from regpilot.evaluation.spec import EvaluationSpec
from regpilot.evaluation.verdict import MeasuredRules


class PolicyError(Exception):
    """An invalid policy file; the message names the file, line and key of every problem."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricBound(_Strict):
    """`{min: x}` (higher is better) or `{max: y}` (lower is better)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MetricBound:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of 'min' or 'max'")
        return self

    def threshold(self, metric: str) -> Threshold:
        """Return the core threshold for this bound."""
        if self.min is not None:
            return Threshold(metric, Direction.MIN, self.min)
        assert self.max is not None
        return Threshold(metric, Direction.MAX, self.max)


class ChampionPolicy(_Strict):
    """Compare a candidate with the current champion on one metric."""

    metric: str
    direction: Literal["min", "max"] | None = None
    min_improvement: float = Field(default=0.0, ge=0.0)


class EvaluationPolicy(_Strict):
    """Measure the model on a labelled dataset instead of trusting its logged numbers.

    `metrics` bounds are on what `mlflow.models.evaluate` measures; `champion` compares the
    candidate and the champion measured on the same rows; `logged_vs_measured` maps a logged
    metric to its measured twin, and a logged number overstating it by more than `max_gap`
    fails (the run lied about itself).
    """

    dataset: str = Field(min_length=1)
    targets: str = Field(min_length=1)
    model_type: Literal["classifier", "regressor"]
    metrics: dict[str, MetricBound] = Field(default_factory=dict)
    champion: ChampionPolicy | None = None
    logged_vs_measured: dict[str, str] = Field(default_factory=dict)
    max_gap: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    max_rows: int = Field(default=100_000, ge=1)
    timeout_seconds: float = Field(default=300.0, gt=0.0, allow_inf_nan=False)
    env_manager: Literal["local", "virtualenv", "uv"] = "local"

    def bounds(self) -> dict[str, tuple[str, float]]:
        """Return the measured bounds as `{metric: ("min"|"max", value)}`."""
        bounds: dict[str, tuple[str, float]] = {}
        for name, bound in self.metrics.items():
            threshold = bound.threshold(name)
            bounds[name] = (threshold.direction.value, threshold.bound)
        return bounds

    def champion_direction(self) -> Literal["higher", "lower"] | None:
        """Return which way the measured champion metric improves (None: no comparison).

        An explicit `direction` wins; else a `max` bound on the metric means lower is better;
        else MLflow's error metrics (mean_squared_error...) are lower-is-better, the rest higher.
        """
        if self.champion is None:
            return None
        if self.champion.direction is not None:
            return "higher" if self.champion.direction == "min" else "lower"
        bound = self.metrics.get(self.champion.metric)
        if bound is not None:
            return "lower" if bound.max is not None else "higher"
        return "lower" if self.champion.metric in LOWER_IS_BETTER else "higher"

    def measured_rules(self) -> MeasuredRules:
        """Return the core rules of the measured gate."""
        rule = self.champion_rule()
        return MeasuredRules(
            bounds=self.bounds(),
            champion_metric=rule.metric if rule else None,
            champion_direction=rule.direction if rule else Direction.MIN,
            min_improvement=rule.min_improvement if rule else 0.0,
            logged_vs_measured=dict(self.logged_vs_measured),
            max_gap=self.max_gap,
        )

    def spec(self) -> EvaluationSpec:
        """Return what the evaluation engine measures the model on."""
        return EvaluationSpec(
            dataset=self.dataset,
            targets=self.targets,
            model_type=self.model_type,
            metrics=self.bounds(),
            max_rows=self.max_rows,
            timeout_seconds=self.timeout_seconds,
            env_manager=self.env_manager,
        )

    def champion_rule(self) -> ChampionRule | None:
        """Return the measured comparison as a core champion rule."""
        direction = self.champion_direction()
        if self.champion is None or direction is None:
            return None
        return ChampionRule(
            self.champion.metric,
            Direction.MIN if direction == "higher" else Direction.MAX,
            self.champion.min_improvement,
        )


class AliasPolicy(_Strict):
    """Alias names, and the stage each stands for on a registry without aliases."""

    challenger: str = Field(default="challenger", pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")
    champion: str = Field(default="champion", pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")
    # The Databricks Workspace Model Registry has stages but no aliases: there the challenger
    # and the champion are the version in these stages; null leaves the stages alone.
    challenger_stage: Literal["Staging", "Production"] | None = "Staging"
    champion_stage: Literal["Staging", "Production"] | None = "Production"

    def stage_for(self, alias: str) -> str | None:
        """Return the stage standing for `alias` where aliases do not exist (None: none)."""
        if alias == self.champion:
            return self.champion_stage
        if alias == self.challenger:
            return self.challenger_stage
        return None


class RetentionPolicy(_Strict):
    """How many versions to keep and what to do with the rest."""

    keep: int = Field(default=10, ge=1)
    action: Literal["archive", "delete"] = "archive"
    protected_stages: list[str] = Field(default_factory=lambda: ["Production", "Staging"])


# Secrets stay out of the policy file: a destination names the environment variable that holds
# its secret, and only REGPILOT_NOTIFY_* names, so a policy cannot send other secrets anywhere.
NOTIFY_ENV_PATTERN = r"^REGPILOT_NOTIFY_[A-Z0-9_]+$"


class NotificationDestination(_Strict):
    """Where decisions are sent and which ones.

    `type`: `slack` (incoming webhook), `teams` (Teams webhook, Adaptive Card) or `webhook`
    (any HTTPS endpoint; a Standard-Webhooks-signed JSON event, docs/NOTIFICATIONS.md).
    The URL is given in clear (`url`) or read from a variable (`url_env`); Slack and Teams
    webhook URLs are themselves secrets, so give those with `url_env`.
    """

    type: Literal["slack", "teams", "webhook"]
    url: str | None = None
    url_env: str | None = Field(default=None, pattern=NOTIFY_ENV_PATTERN)
    secret_env: str | None = Field(default=None, pattern=NOTIFY_ENV_PATTERN)
    events: list[str] = Field(default_factory=lambda: list(EVENT_TYPES))

    @model_validator(mode="after")
    def _consistent(self) -> NotificationDestination:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' or 'url_env'")
        if self.url is not None:
            problem = destination_url_problem(self.url)
            if problem:
                raise ValueError(f"url {problem}")
        if self.type == "webhook" and self.secret_env is None:
            raise ValueError(
                "a webhook destination needs 'secret_env' (the variable holding its whsec_ "
                "secret, e.g. REGPILOT_NOTIFY_SECRET_OPS)"
            )
        if self.type != "webhook" and self.secret_env is not None:
            raise ValueError(f"'secret_env' applies to type webhook only, not {self.type}")
        unknown = sorted(set(self.events) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown event(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
            )
        return self

    def wants(self, event_type: str) -> bool:
        """Tell whether this destination subscribes to an event type."""
        return event_type in self.events


class ModelPolicy(_Strict):
    """The effective policy of one model."""

    metrics: dict[str, MetricBound] = Field(default_factory=dict)
    require_signature: bool = False
    required_tags: list[str] = Field(default_factory=list)
    required_params: list[str] = Field(default_factory=list)
    champion: ChampionPolicy | None = None
    auto_promote: bool = False
    aliases: AliasPolicy = Field(default_factory=AliasPolicy)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    notifications: dict[str, NotificationDestination] = Field(default_factory=dict)
    evaluation: EvaluationPolicy | None = None

    @model_validator(mode="after")
    def _promotion_needs_comparison(self) -> ModelPolicy:
        if self.auto_promote and self.champion_rule() is None:
            raise ValueError(
                "auto_promote needs a 'champion' comparison (metric and margin), "
                "top-level or under 'evaluation'"
            )
        return self

    def measured_champion(self) -> bool:
        """Tell whether the champion comparison is on measured numbers (`evaluation.champion`)."""
        return self.evaluation is not None and self.evaluation.champion is not None

    def champion_rule(self) -> ChampionRule | None:
        """Return the direction-aware champion rule, if any.

        `evaluation.champion` takes precedence over the top-level `champion`: with both, the
        candidate and the champion are compared on the measured numbers only.
        """
        if self.evaluation is not None and self.evaluation.champion is not None:
            return self.evaluation.champion_rule()
        if self.champion is None:
            return None
        direction = self.champion.direction
        if direction is None:
            bound = self.metrics.get(self.champion.metric)
            direction = "max" if bound is not None and bound.max is not None else "min"
        return ChampionRule(
            self.champion.metric, Direction(direction), self.champion.min_improvement
        )

    def gate_rules(self) -> GateRules:
        """Return the core gate rules for this model."""
        return GateRules(
            thresholds=tuple(bound.threshold(m) for m, bound in sorted(self.metrics.items())),
            require_signature=self.require_signature,
            required_tags=tuple(self.required_tags),
            required_params=tuple(self.required_params),
            # A measured comparison replaces the logged one (see `champion_rule`).
            champion=None if self.measured_champion() else self.champion_rule(),
        )

    def retention_rules(self) -> RetentionRules:
        """Return the core retention rules for this model."""
        return RetentionRules(
            keep=self.retention.keep,
            action=PruneAction(self.retention.action),
            protected_stages=frozenset(self.retention.protected_stages),
        )


class PolicyFile(_Strict):
    """The whole file as written."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    name_mapping: dict[str, str] = Field(default_factory=dict)


SEED_METRICS: dict[str, dict[str, float]] = {
    "test_accuracy": {"min": 0.85},
    "test_precision": {"min": 0.80},
    "test_recall": {"min": 0.80},
}


_BY_NAME = ("metrics", "notifications")


_EVALUATION_BY_NAME = ("metrics", "logged_vs_measured")


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a model's override onto the defaults.

    `metrics` and `notifications` merge by name (each entry is replaced whole; null drops an
    inherited one); `aliases`, `retention`, `champion` and `evaluation` merge by key (inside
    `evaluation`, `metrics` and `logged_vs_measured` by name); anything else is replaced.
    `evaluation: null` drops an inherited evaluation block.
    """
    return _merge_by_key(base, override, _BY_NAME, {"evaluation": _EVALUATION_BY_NAME})


def _merge_by_key(
    base: Mapping[str, Any],
    override: Mapping[str, Any],
    by_name: tuple[str, ...] | frozenset[str],
    blocks: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    # Merge key by key: the `by_name` members entry by entry (null drops one), each of `blocks`
    # as a block of its own (with its own by-name members), other mappings by key.
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        inherited = merged.get(key)
        if not (isinstance(value, Mapping) and isinstance(inherited, Mapping)):
            merged[key] = copy.deepcopy(value)
        elif blocks and key in blocks:
            merged[key] = _merge_by_key(inherited, value, blocks[key])
        elif key in by_name:
            combined = {**inherited, **value}
            merged[key] = {k: v for k, v in combined.items() if v is not None}
        else:
            merged[key] = {**inherited, **value}
    return merged


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy: effective per-model policies with inheritance applied."""

    source: str
    defaults: ModelPolicy
    overrides: Mapping[str, ModelPolicy]
    name_mapping: Mapping[str, str]

    def for_model(self, name: str) -> ModelPolicy:
        """Return the effective policy for a registered model (full or short UC name)."""
        if name in self.overrides:
            return self.overrides[name]
        short = name.rsplit(".", 1)[-1]
        return self.overrides.get(short, self.defaults)

    def mapped_name(self, experiment_name: str | None) -> str | None:
        """Return the registered model an experiment maps to, if the policy says."""
        if experiment_name is None:
            return None
        return self.name_mapping.get(experiment_name) or self.name_mapping.get(
            experiment_name.rsplit("/", 1)[-1]
        )


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    # Walk the YAML node tree along a pydantic error location to report a 1-based line.
    current = node
    line = current.start_mark.line + 1 if current is not None else None
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if key_node.value == str(part):
                    current = value_node
                    line = key_node.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part < len(current.value):
                current = current.value[part]
                line = current.start_mark.line + 1
        else:
            return line
    return line


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for model in (
        PolicyFile,
        ModelPolicy,
        MetricBound,
        ChampionPolicy,
        AliasPolicy,
        RetentionPolicy,
    ):
        keys.update(model.model_fields)
    return keys


def _plain_words(error: Mapping[str, Any], key: str) -> str:
    """Return a pydantic error as a person would say it about a policy key."""
    kind = str(error.get("type", ""))
    given = error.get("input")
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(key, sorted(_known_keys()), n=1, cutoff=0.6)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return f"'{key}' is required"
    if kind.startswith(("float_", "int_")):
        whole = "a whole number" if kind.startswith("int_") else "a number"
        return f"'{key}' must be {whole}, not {given!r}"
    if kind.startswith("bool_"):
        return f"'{key}' must be true or false, not {given!r}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"'{key}' must be a mapping of keys to values, not {given!r}"
    if kind == "list_type":
        return f"'{key}' must be a list, not {given!r}"
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ").replace("Input should be", "must be")
    return f"'{key}' {message}" if message.startswith("must") else f"'{key}': {message}"


def _problems(
    exc: ValidationError,
    source: str,
    root: yaml.Node | None,
    prefix: tuple[Any, ...],
    written: Mapping[str, Any] | None = None,
) -> list[str]:
    """Return one line per error: `file:line: policy key 'a.b.c': what is wrong`.

    `written`: the keys the user wrote at `prefix`; an error under a key inherited from
    `defaults` is reported once, at `defaults`, not again for every model.
    """
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if written is not None and loc and str(loc[0]) not in written:
            continue
        # Pydantic puts union/validator tags in loc; keep only the path a user wrote.
        path = prefix + tuple(
            p for p in loc if not (isinstance(p, str) and p.startswith("function-"))
        )
        line = _line_of(root, path)
        where = f"{source}:{line}" if line else source
        dotted = ".".join(str(p) for p in path) or "(top level)"
        last = str(path[-1]) if path else ""
        lines.append(f"{where}: policy key '{dotted}': {_plain_words(error, last)}")
    return lines


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate policy YAML, raising PolicyError with every problem at once."""
    try:
        root = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}{line}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}:1: the policy must be a mapping with 'defaults' and 'models'")
    try:
        parsed = PolicyFile.model_validate(raw)
    except ValidationError as exc:
        _fail(_problems(exc, source, root, ()))
    problems: list[str] = []
    # With no `defaults.metrics` the seed's gate applies; a file that writes one defines the gate.
    base = ModelPolicy().model_dump(exclude_none=True)
    if "metrics" not in parsed.defaults:
        base["metrics"] = copy.deepcopy(SEED_METRICS)
    try:
        defaults = ModelPolicy.model_validate(_merge(base, parsed.defaults))
    except ValidationError as exc:
        problems += _problems(exc, source, root, ("defaults",))
        defaults = ModelPolicy.model_validate(base)  # go on, to report the models' problems too
    overrides: dict[str, ModelPolicy] = {}
    effective_defaults = defaults.model_dump(exclude_none=True)
    for name, override in parsed.models.items():
        try:
            overrides[name] = ModelPolicy.model_validate(_merge(effective_defaults, override or {}))
        except ValidationError as exc:
            written = override or {}
            found = _problems(exc, source, root, ("models", name), written)
            # A problem that comes from combining keys (auto_promote without champion) has no
            # key of its own: report it at the model.
            problems += found or _problems(exc, source, root, ("models", name))
    if problems:
        _fail(problems)
    return Policy(source, defaults, overrides, dict(parsed.name_mapping))


def _fail(problems: list[str]) -> NoReturn:
    if len(problems) == 1:
        raise PolicyError(problems[0], problems)
    raise PolicyError(
        f"invalid policy ({len(problems)} problems):\n" + "\n".join(problems), problems
    )


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from exc
    return parse_policy(text, str(path))


def evaluation_dataset_problems(policy: Policy) -> list[str]:
    """Return one line per evaluation dataset that cannot be used, naming its policy key.

    Reads only each LOCAL dataset's header (CSV header line or Parquet schema): a missing file
    or a missing `targets` column is a problem. A remote URI is checked at its first
    evaluation, which records FAILED with the reason.
    """
    blocks: list[tuple[str, EvaluationPolicy]] = []
    if policy.defaults.evaluation is not None:
        blocks.append(("defaults.evaluation", policy.defaults.evaluation))
    for name, model in policy.overrides.items():
        if model.evaluation is not None and model.evaluation != policy.defaults.evaluation:
            blocks.append((f"models.{name}.evaluation", model.evaluation))
    problems: list[str] = []
    for key, block in blocks:
        try:
            check_header(block.dataset, block.targets)
        except DatasetError as exc:
            field = "targets" if block.targets in str(exc) and "column" in str(exc) else "dataset"
            problems.append(f"{policy.source}: policy key '{key}.{field}': {exc}")
    return problems
