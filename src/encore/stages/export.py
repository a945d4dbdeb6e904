"""Export stage: the final policy (base → SFT → preference adapter) as merged full weights in safetensors.

The result loads with plain `AutoModelForCausalLM.from_pretrained(dir)`: no PEFT, no encore.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from encore.config import Recipe
from encore.tracking import stage_run
from encore.train.lora import export_merged


def main(recipe: Recipe, out_dir: Path | None = None) -> Path:
    """Merge the recipe's trained adapters into the base and write them to `out_dir` (default `<out>/export`)."""
    out_dir = out_dir or recipe.out / "export"
    stages = recipe.policy_stages
    with stage_run(recipe, "export"):
        adapters = [recipe.out / s / "adapter" for s in stages]
        missing = [str(a) for a in adapters if not (a / "adapter_config.json").exists()]
        if missing:
            raise FileNotFoundError(
                f"no trained adapter at {', '.join(missing)} (did the training stages run?)"
            )
        export_merged(recipe.base_model, adapters, out_dir, trust_remote_code=recipe.trust_remote_code)
        size = sum(f.stat().st_size for f in out_dir.glob("*.safetensors"))
        mlflow.set_tags({"encore.export_dir": str(out_dir), "encore.stages": "+".join(stages) or "base"})
        mlflow.log_metric("export/safetensors_bytes", float(size))
    return out_dir
