"""Typed pipeline recipes: YAML → pydantic, dotted `--set` overrides, TRL `args:` checked against TRL's dataclasses.

Everything here runs before Spark or a model starts, so a bad recipe fails in a second with the
file and the key in the message. Only the check of `args:` blocks imports TRL (for its config
dataclasses); nothing starts.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

_SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # no path separators, no leading `.` or `..`


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SimulatorConfig(_Section):
    """Arguments of `encore.simulator.simulate` (the embedded default data source)."""

    n_users: int = 60
    sessions_per_user: int = 3
    n_artists: int = 300
    n_tracks: int = 2400
    candidates_k: int = 20
    policy_quality: tuple[float, float] = (0.8, 0.3)


class LogsConfig(_Section):
    """Your own feedback logs in the canonical format (docs/architecture.md)."""

    responses: str
    interactions: str
    catalog: str
    intents: str | None = None


class DataConfig(_Section):
    source: Literal["simulator", "logs"] = "simulator"
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    logs: LogsConfig | None = None


class PrepConfig(_Section):
    spark_master: str = "local[2]"
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    min_margin: float = Field(0.3, ge=0)
    sft_min_reward: float = 0.3
    max_pairs_per_prompt: int = Field(4, ge=1)
    early_skip: float = Field(0.25, gt=0, lt=1)
    max_request_chars: int = Field(500, gt=0)
    # The split key; `ENCORE_HASH_KEY` in the environment wins. Never logged.
    hash_key: str = "encore-default-key"


class LoraConfig(_Section):
    r: int = Field(16, ge=1)
    alpha: int = 32  # usually 2 × r
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class TrainStageConfig(_Section):
    enabled: bool = True
    # Passed as is into TRL's SFTConfig / DPOConfig: every TRL option works, unknown keys are errors.
    args: dict[str, Any] = Field(default_factory=dict)


class EvalConfig(_Section):
    models: list[Literal["base", "sft", "dpo"]] = ["base", "sft", "dpo"]
    max_requests: int | None = 64
    max_new_tokens: int = 256
    batch_size: int = 16
    primary_metric: str = "fulfillment"


class RegisterConfig(_Section):
    enabled: bool = True
    name: str = Field("playlist-generator", pattern=_SAFE_NAME)
    alias: str = "candidate"
    retrieval_k: int = 20
    max_new_tokens: int = 256


class TrackingConfig(_Section):
    # `MLFLOW_TRACKING_URI` in the environment overrides this.
    uri: str = "sqlite:///mlruns/mlflow.db"
    experiment: str | None = None  # default: the recipe's name


class Recipe(_Section):
    name: str = Field(pattern=_SAFE_NAME)
    seed: int = 0
    base_model: str
    trust_remote_code: bool = False
    output_dir: str = "outputs/{name}"
    data: DataConfig = Field(default_factory=DataConfig)
    prep: PrepConfig = Field(default_factory=PrepConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    sft: TrainStageConfig = Field(default_factory=TrainStageConfig)
    dpo: TrainStageConfig = Field(default_factory=TrainStageConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    # `register` would shadow ABCMeta.register on a pydantic model: the YAML key is `register`.
    registry: RegisterConfig = Field(default_factory=RegisterConfig, alias="register")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @property
    def out(self) -> Path:
        return Path(self.output_dir.format(name=self.name))

    @property
    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or self.tracking.uri

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or f"encore-{self.name}"


def _parse_value(text: str) -> Any:
    """`--set` values are YAML scalars or flow collections: `3`, `1e-4`, `true`, `[a, b]`."""
    return yaml.safe_load(text) if text else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply `section.key=value` overrides to the raw recipe mapping (in place, returned)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"{source}: override {item!r} is not of the form section.key=value")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RecipeError(f"{source}: override {key!r}: {part!r} is not a section")
            node = child
        node[leaf] = _parse_value(value)
    return raw


def _trl_config_class(stage: str) -> type:
    from trl import DPOConfig, SFTConfig

    return {"sft": SFTConfig, "dpo": DPOConfig}[stage]


def check_trl_args(stage: str, args: dict[str, Any], source: str) -> None:
    """Unknown keys and wrongly typed values of an `args:` block, named with file and key."""
    cls = _trl_config_class(stage)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in args.items():
        if key in ("output_dir",):
            raise RecipeError(
                f"{source}: {stage}.args.{key} is set by encore (use output_dir at the top level)"
            )
        if key not in fields:
            raise RecipeError(
                f"{source}: unknown key {stage}.args.{key} (not an option of trl.{cls.__name__})"
            )
        annotation = fields[key].type
        if isinstance(annotation, str):
            continue  # forward references: left to the dataclass itself
        try:
            TypeAdapter(annotation).validate_python(value, strict=False)
        except ValidationError as err:
            msg = err.errors()[0]["msg"]
            raise RecipeError(f"{source}: {stage}.args.{key}={value!r}: {msg}") from None
        except Exception:  # pydantic cannot build a validator for some exotic annotations
            continue


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {key}"
    return f"{source}: {key}: {first['msg']} (got {first.get('input')!r})"


def load_recipe(path: str | Path, overrides: list[str] | None = None, check_args: bool = True) -> Recipe:
    """Read, override and validate a recipe; raise RecipeError naming the file and key on any problem."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise RecipeError(f"{source}: recipe file not found") from None
    except yaml.YAMLError as err:
        raise RecipeError(f"{source}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: a recipe is a mapping of sections, got {type(raw).__name__}")
    apply_overrides(raw, overrides or [], source)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise RecipeError(_format_error(err, source)) from None
    if recipe.data.source == "logs":
        if recipe.data.logs is None:
            raise RecipeError(f"{source}: data.source is 'logs' but data.logs is missing")
        for key, value in recipe.data.logs.model_dump().items():
            if value is not None and not Path(value).exists():
                raise RecipeError(f"{source}: data.logs.{key}: {value} does not exist")
    if check_args:
        check_trl_args("sft", recipe.sft.args, source)
        check_trl_args("dpo", recipe.dpo.args, source)
    return recipe


def flat_params(recipe: Recipe) -> dict[str, str]:
    """The resolved recipe as flat `section.key` → string pairs (secrets left out), for MLflow params."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = str(value)

    data = recipe.model_dump(mode="json", by_alias=True)
    data["prep"].pop("hash_key", None)
    walk("", data)
    return out
