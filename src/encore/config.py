"""Typed pipeline recipes: YAML → pydantic, dotted `--set` overrides, TRL `args:` checked against TRL's dataclasses.

Everything here runs before Spark or a model starts, so a bad recipe fails in a second with the
file and the key in the message. Only the check of `args:` blocks imports TRL (for its config
dataclasses); nothing starts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from data_prep.settings import PrepSettings
from evaluation.direction import direction

_SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # no path separators, no leading `.` or `..`


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file and the key."""


class _RecipeLoader(yaml.SafeLoader):
    """YAML's safe loader, reading ``1e-4`` as a float, as YAML 1.2 does.

    PyYAML implements YAML 1.1, whose floats need a dot (``1.0e-4``): ``1e-4`` was the string
    ``"1e-4"``, which pydantic sections coerce but TRL's ``args:`` pass on as they are (a DPO stage died
    creating its optimizer, after SFT had run, on ``learning_rate: "2e-4"``).
    """


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """Parse recipe YAML (a file or a `--set` value) with :class:`_RecipeLoader`."""
    return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader subclass: safe


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


class IngestConfig(_Section):
    """A public dataset mapped onto the canonical logs by its adapter (`encore ingest KIND INPUT`)."""

    kind: Literal["cpcd", "mssd", "mpd"]
    input: str


class DataConfig(_Section):
    source: Literal["simulator", "logs", "ingest"] = "simulator"
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    logs: LogsConfig | None = None
    ingest: IngestConfig | None = None


class PrepConfig(PrepSettings):
    """The data_prep job's settings (:class:`data_prep.settings.PrepSettings`) plus where it runs."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    spark_master: str = "local[2]"
    # More Spark settings for the prep session (`spark-submit --conf` still wins), e.g. executor memory;
    # `spark.driver.extraJavaOptions` applies where prep starts its own JVM (local mode).
    spark_conf: dict[str, str] = Field(default_factory=dict)
    # The split key; `ENCORE_HASH_KEY` in the environment wins. Never logged.
    hash_key: str = "encore-default-key"


class LoraConfig(_Section):
    """The adapter every training stage trains (PEFT LoRA, optionally DoRA, optionally on a 4-bit base)."""

    r: int = Field(16, ge=1)
    alpha: int = 32  # usually 2 × r
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    use_dora: bool = False  # weight-decomposed LoRA (PEFT `use_dora`): slower steps, often better at low r
    # Modules trained in full beside the adapters and saved with them (PEFT `modules_to_save`), e.g.
    # `[embed_tokens, lm_head]` for a base whose embeddings are random (builtin:tiny).
    modules_to_save: list[str] = Field(default_factory=list)
    # `4bit`: QLoRA, the frozen base loaded in NF4 through bitsandbytes; needs a CUDA GPU.
    quantize: Literal["none", "4bit"] = "none"


class TrainStageConfig(_Section):
    enabled: bool = True
    # Passed as is into the stage's TRL config dataclass (SFTConfig, DPOConfig, …): every TRL option
    # works, unknown keys are errors.
    args: dict[str, Any] = Field(default_factory=dict)
    # Also write the policy up to this stage as merged full weights (safetensors) to `<out>/<stage>/merged`.
    merge: bool = False


class GrpoRewardWeights(_Section):
    """Weights of GRPO's reward functions (TRL's `reward_weights`); a zero weight drops the function."""

    reward_model: float = Field(1.0, ge=0)  # the `reward` stage's model (used when `reward.enabled`)
    format: float = Field(1.0, ge=0)  # 1 when every line parses and no track repeats
    grounded: float = Field(1.0, ge=0)  # fraction of lines naming a candidate or catalog track
    distinct_artists: float = Field(0.5, ge=0)  # fraction of lines whose artist is not repeated
    length: float = Field(0.5, ge=0)  # closeness to the length the request asks for ("8 songs")


class GrpoStageConfig(TrainStageConfig):
    rewards: GrpoRewardWeights = Field(default_factory=GrpoRewardWeights)


Preference = Literal["dpo", "kto", "orpo", "simpo", "rlhf"]
# The stage whose adapter is the final policy, per preference method.
PREFERENCE_STAGE: dict[str, str] = {
    "dpo": "dpo",
    "kto": "kto",
    "orpo": "orpo",
    "simpo": "simpo",
    "rlhf": "grpo",
}
EvalModel = Literal["base", "sft", "preference", "dpo", "kto", "orpo", "simpo", "grpo"]


class EvalConfig(_Section):
    # `preference` stands for the recipe's preference stage (dpo, kto, orpo, simpo or grpo).
    models: list[EvalModel] = ["base", "sft", "preference"]
    max_requests: int | None = 64
    # Held-out preference pairs scored for preference accuracy (`null`: as many as `max_requests`). Each
    # pair is four forward passes of up to `max_length` tokens: on a CPU they cost more than generation.
    max_pairs: int | None = Field(None, ge=0)
    max_new_tokens: int = 256
    batch_size: int = 16
    primary_metric: str = "fulfillment"
    # Reference playlists scored beside the models (evaluation/baselines.py): retrieval order, a
    # learning-to-rank model trained on the training users' feedback (evaluation/reranker.py), the oracle.
    baselines: list[Literal["retrieval", "reranker", "oracle"]] = ["retrieval", "reranker", "oracle"]
    # Simulated-user replays per playlist: more narrow `sim_saves`' noise (scoring only, no generation).
    sim_replays: int = Field(8, ge=1)

    @property
    def pair_limit(self) -> int | None:
        """Held-out pairs to score: `max_pairs`, or as many as `max_requests` where that is unset."""
        return self.max_requests if self.max_pairs is None else self.max_pairs


class RegisterConfig(_Section):
    enabled: bool = True
    name: str = Field("playlist-generator", pattern=_SAFE_NAME)
    alias: str = "candidate"
    retrieval_k: int = 20
    max_new_tokens: int = 256
    # `encore promote`'s floors for this model, over its defaults (docs/evaluation.md): metric → the least
    # (or, lower-is-better, the most) it may be. Tagged on the version as `floor.<metric>`.
    floors: dict[str, float] = {}

    @field_validator("floors")
    @classmethod
    def _floors_have_a_direction(cls, floors: dict[str, float]) -> dict[str, float]:
        sideless = [m for m in floors if not direction(m)]
        if sideless:
            raise ValueError(
                f"no floor for {', '.join(sideless)}: neither higher nor lower is better "
                "(evaluation/direction.py names the metrics a floor can hold)"
            )
        return floors


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
    # The preference method after SFT; `rlhf` trains the `reward` model, then `grpo` against it.
    preference: Preference = "dpo"
    data: DataConfig = Field(default_factory=DataConfig)
    prep: PrepConfig = Field(default_factory=PrepConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    sft: TrainStageConfig = Field(default_factory=TrainStageConfig)
    dpo: TrainStageConfig = Field(default_factory=TrainStageConfig)
    kto: TrainStageConfig = Field(default_factory=TrainStageConfig)
    orpo: TrainStageConfig = Field(default_factory=TrainStageConfig)
    simpo: TrainStageConfig = Field(default_factory=TrainStageConfig)
    reward: TrainStageConfig = Field(default_factory=TrainStageConfig)
    grpo: GrpoStageConfig = Field(default_factory=GrpoStageConfig)
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
    def hash_key(self) -> str:
        """The key that hashes user ids (splits, user keys, prompt ids): `ENCORE_HASH_KEY` when set, else
        `prep.hash_key`. The one place this rule lives; prep, collect and pair_labels all read it here."""
        return os.environ.get("ENCORE_HASH_KEY", self.prep.hash_key)

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or f"encore-{self.name}"

    @property
    def preference_stage(self) -> str:
        """The stage that trains the final adapter: `dpo`, `kto`, `orpo`, `simpo` or `grpo` (for `rlhf`)."""
        return PREFERENCE_STAGE[self.preference]

    @property
    def policy_stages(self) -> list[str]:
        """The enabled stages whose adapters make the final policy, in training order (`[sft, kto]`, …)."""
        stages = ["sft"] if self.sft.enabled else []
        if getattr(self, self.preference_stage).enabled:
            stages.append(self.preference_stage)
        return stages

    @property
    def eval_models(self) -> list[str]:
        """`eval.models` with `preference` replaced by the preference stage's name, without repeats."""
        names = [self.preference_stage if m == "preference" else m for m in self.eval.models]
        return list(dict.fromkeys(names))

    def adapters_before(self, stage: str) -> list[str]:
        """The stages whose adapters are merged into `stage`'s starting weights: SFT's, for any stage after it.

        Also for a preference stage launched alone that is not the recipe's `preference`
        (`encore train dpo` on a KTO recipe trains DPO on the same SFT model).
        """
        return ["sft"] if stage != "sft" and self.sft.enabled else []


def _parse_value(text: str) -> Any:
    """`--set` values are YAML scalars or flow collections: `3`, `1e-4`, `true`, `[a, b]`."""
    return read_yaml(text) if text else ""


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


TRAIN_STAGES = ("sft", "dpo", "kto", "orpo", "simpo", "reward", "grpo")


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
        raw = read_yaml(Path(path).read_text()) or {}
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
    if recipe.data.source == "ingest":
        if recipe.data.ingest is None:
            raise RecipeError(f"{source}: data.source is 'ingest' but data.ingest is missing")
        if not Path(recipe.data.ingest.input).exists():
            raise RecipeError(f"{source}: data.ingest.input: {recipe.data.ingest.input} does not exist")
    _check_training(recipe, source)
    if check_args:
        from encore.train.trl_config import check_trl_args  # imports TRL only when a block has keys

        for stage in TRAIN_STAGES:
            if getattr(recipe, stage).args:  # an empty block has nothing to check (and imports nothing)
                args = getattr(recipe, stage).args
                args.update(check_trl_args(stage, args, source))
    return recipe


def _check_training(recipe: Recipe, source: str) -> None:
    """Cross-section rules of the training chain, before anything heavy starts."""
    trained = recipe.policy_stages
    for model in recipe.eval_models:
        if model != "base" and model not in trained:
            raise RecipeError(
                f"{source}: eval.models: {model!r} is not trained by this recipe "
                f"(preference: {recipe.preference}; trained: {', '.join(trained) or 'nothing'})"
            )
    if recipe.preference == "rlhf" and recipe.grpo.enabled:
        weights = recipe.grpo.rewards.model_dump()
        if not recipe.reward.enabled:
            weights.pop("reward_model")
        if not any(weights.values()):
            raise RecipeError(
                f"{source}: grpo.rewards: every reward weight is 0, GRPO has nothing to optimise"
            )
    if recipe.lora.quantize == "4bit":
        from encore.train.quantize import cuda_error  # imports torch only for a QLoRA recipe

        problem = cuda_error()
        if problem:
            raise RecipeError(f"{source}: lora.quantize=4bit: {problem}")


def flat_params(recipe: Recipe) -> dict[str, str]:
    """The resolved recipe as flat `section.key` → string pairs (secrets left out), for MLflow params."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = str(value)

    walk("", loggable(recipe))
    return out


# Spark's own `spark.redaction.regex` default: settings whose key matches are never shown.
_SECRET_KEY = re.compile(r"secret|password|token|access[.]?key|credential", re.IGNORECASE)


def loggable(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe as JSON-ready data, fit for MLflow: no hash key, secret Spark settings redacted."""
    data = recipe.model_dump(mode="json", by_alias=True)
    data["prep"].pop("hash_key", None)
    conf = data["prep"]["spark_conf"]
    data["prep"]["spark_conf"] = {
        k: "*********(redacted)" if _SECRET_KEY.search(k) else v for k, v in conf.items()
    }
    return data
