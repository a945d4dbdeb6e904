"""Typed pipeline recipes: YAML → pydantic, dotted `--set` overrides, TRL `args:` checked against TRL's dataclasses.

Everything here runs before Spark or a model starts, so a bad recipe fails in a second with the
file and the key in the message. Only the check of `args:` blocks imports TRL (for its config
dataclasses); nothing starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from data_prep.settings import PrepSettings
from encore.errors import RecipeError
from encore.methods import (
    BY_NAME,
    EVAL_MODELS,
    METHODS,
    PREFERENCE_STAGE,
    TRAIN_STAGES,
    GrpoStageConfig,
    TrainStageConfig,
    method,
)
from encore.recipe_yaml import apply_overrides, read_yaml
from evaluation.direction import direction

__all__ = ["Recipe", "RecipeError", "load_recipe"]

_SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # no path separators, no leading `.` or `..`


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SimulatorConfig(_Section):
    """Arguments of `playlist.simulator.simulate` (the embedded default data source)."""

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

    def adapter_args(self) -> dict[str, Any]:
        """The adapter's settings as `encore.train.lora.build_lora_config` takes them."""
        return self.model_dump(exclude={"quantize"})


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else the error pydantic gives for a `Literal` of them."""
    if value not in choices:
        quoted = [repr(c) for c in choices]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


class EvalConfig(_Section):
    # `preference` stands for the recipe's preference stage (dpo, kto, orpo, simpo or grpo); any policy
    # stage of encore.methods may be named.
    models: list[Annotated[str, AfterValidator(lambda m: _one_of(m, EVAL_MODELS))]] = [
        "base",
        "sft",
        "preference",
    ]
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


class FlywheelConfig(_Section):
    """`encore flywheel`: on-policy rounds ranked by a reward model learnt from the logs (docs/flywheel.md)."""

    rounds: int = Field(2, ge=1)
    samples: int = Field(4, ge=2)  # playlists sampled per training request and round
    temperature: float = Field(1.0, gt=0)
    # Answer 0 of each request greedy (what production shows, then a hard negative), the others sampled
    greedy_first: bool = False
    margin: float = Field(0.05, ge=0)  # least reward gap between the chosen and the rejected sample
    length_tolerance: int = Field(2, ge=0)  # most answer lines the rejected sample may differ by
    # A track's worth is multiplied by this for each earlier line of the same artist (1: no penalty)
    repeat_artist_worth: float = Field(1.0, ge=0, le=1)
    max_prompts: int | None = Field(None, ge=1)  # training requests a round samples (None: all)
    max_requests: int | None = Field(None, ge=1)  # held-out requests each policy is scored on (None: all)
    # DPO's `rpo_alpha`-style NLL on the chosen side comes from `dpo.args`; the control continues SFT
    # with the rounds' own optimiser settings and step count on the `sft` rows (the matched compute).
    control: bool = True


class TrackingConfig(_Section):
    # `MLFLOW_TRACKING_URI` in the environment overrides this.
    uri: str = "sqlite:///mlruns/mlflow.db"
    experiment: str | None = None  # default: the recipe's name


class _RecipeBase(_Section):
    """A recipe's sections besides the training stages', which follow from `encore.methods.METHODS`."""

    name: str = Field(pattern=_SAFE_NAME)
    seed: int = 0
    base_model: str
    trust_remote_code: bool = False
    output_dir: str = "outputs/{name}"
    # The preference method after SFT (`encore.methods.PREFERENCE_STAGE`); `rlhf` trains the `reward`
    # model, then `grpo` against it.
    preference: Annotated[str, AfterValidator(lambda p: _one_of(p, tuple(PREFERENCE_STAGE)))] = "dpo"
    data: DataConfig = Field(default_factory=DataConfig)
    prep: PrepConfig = Field(default_factory=PrepConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    # `register` would shadow ABCMeta.register on a pydantic model: the YAML key is `register`.
    registry: RegisterConfig = Field(default_factory=RegisterConfig, alias="register")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    flywheel: FlywheelConfig = Field(default_factory=FlywheelConfig)

    def section(self, stage: str) -> TrainStageConfig:
        """The recipe section of training stage `stage` (`recipe.section("dpo").args`)."""
        value = getattr(self, stage)
        assert isinstance(value, TrainStageConfig), stage
        return value

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
        stages = ["sft"] if self.section("sft").enabled else []
        if self.section(self.preference_stage).enabled:
            stages.append(self.preference_stage)
        return stages

    @property
    def final_model(self) -> str:
        """The model the recipe ends with: its last policy stage, or `base` when it trains none."""
        return self.policy_stages[-1] if self.policy_stages else "base"

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
        return ["sft"] if stage != "sft" and self.section("sft").enabled else []

    def implicit_beta(self, stage: str) -> float:
        """β of the implicit reward β·log(π/π_ref) that the eval reads stage `stage`'s policy with.

        The DPO family's own `args.beta` (else TRL's default for it); for a stage without one (SFT, and
        GRPO, whose `beta` is a KL weight) TRL's DPO default. Preference accuracy (margin > 0) does not
        depend on β, only the margins' scale does.
        """
        from encore.train.trl_config import trl_default  # imports TRL

        declared = BY_NAME.get(stage)
        if declared is not None and declared.implicit_beta:
            return float(self.section(stage).args.get("beta", trl_default(stage, "beta")))
        return float(trl_default("dpo", "beta"))

    def merged_dir(self, stage: str) -> Path | None:
        """`<out>/<stage>/merged` when the stage's section asks for merged weights (`merge: true`), else None."""
        return self.out / stage / "merged" if self.section(stage).merge else None

    def preference_chain(self) -> list[str]:
        """The enabled stages the pipeline trains for `preference`, in order (`[reward, grpo]` for rlhf).

        Empty when the preference stage itself is disabled.
        """
        final = self.preference_stage
        if not self.section(final).enabled:
            return []
        first = [s for s in method(final).trained_first if self.section(s).enabled]
        return [*first, final]


# Every training stage's section, one per `encore.methods.METHODS` entry (`sft:`, `dpo:`, …, `grpo:`),
# so that a new method's line there is its recipe section too. The type checker sees the fields above
# only: code reads a stage's section through `Recipe.section(stage)`.
if TYPE_CHECKING:
    Recipe = _RecipeBase
else:
    Recipe = create_model(
        "Recipe",
        __base__=_RecipeBase,
        __module__=__name__,
        **{m.name: (m.section, Field(default_factory=m.section)) for m in METHODS},
    )


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
            args = recipe.section(stage).args
            if args:  # an empty block has nothing to check (and imports nothing)
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
    grpo = recipe.section("grpo")
    if recipe.preference == "rlhf" and grpo.enabled:
        assert isinstance(grpo, GrpoStageConfig)
        weights = grpo.rewards.model_dump()
        if not recipe.section("reward").enabled:
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
