"""The data_prep job: raw feedback logs in, validated logs + quarantine + pairs/sft/eval + manifest out.

Run with ``spark-submit data_prep/job.py --responses … --interactions … --catalog … --out out/``
(or ``python -m data_prep.job``). All reading and writing happens here; everything between is a
``DataFrame -> DataFrame`` transform from the sibling modules.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from data_prep import schemas
from data_prep.eval_set import build_eval
from data_prep.inputs import parse_input, read_input
from data_prep.manifest import (
    check_accounting,
    check_replaceable,
    fingerprint,
    input_entry,
    output_entry,
    reason_counts,
    write_observed,
)
from data_prep.pairs import build_pairs
from data_prep.privacy import mask_columns, mask_text
from data_prep.render import attach_tracks, render_responses, reshuffled_copies, shuffle_train_candidates
from data_prep.rewards import position_propensity, response_rewards, track_values
from data_prep.session import cut_lineage
from data_prep.settings import PrepSettings, load_settings
from data_prep.sft import best_per_prompt, build_sft
from data_prep.splits import add_prompt_id, add_user_key, assign_split, redact_user_id
from data_prep.unpaired import build_unpaired
from data_prep.validation import (
    quarantine_rows,
    valid_rows,
    validate_catalog,
    validate_intents,
    validate_interactions,
    validate_responses,
)
from playlist.prompts import PROMPT_FORMAT
from playlist.publish import publishing


def run(
    spark: SparkSession,
    *,
    responses: str,
    interactions: str,
    catalog: str,
    intents: str | None,
    out: str,
    hash_key: str,
    settings: PrepSettings | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Validate the logs, score responses, build pairs/unpaired/sft/eval and write them with a manifest.

    Args:
        spark: The session to run on.
        responses: Responses log (JSON Lines or Parquet, file or directory).
        interactions: Interactions log.
        catalog: Catalog.
        intents: Optional hidden intents (simulated logs), for evaluation.
        out: Output directory, replaced atomically when the job succeeds.
        hash_key: Key of the user and prompt hashes; never written anywhere.
        settings: Rewards, pair strategies and exports; defaults when None.
        seed: Breaks ties between equal pair margins.

    Returns:
        The manifest, as written to ``<out>/manifest.json``.

    Raises:
        InputSchemaError: An input is unreadable or lacks a required column.
        RowAccountingError: Some input's rows do not add up (a bug, never silently ignored).
    """
    cfg = settings or PrepSettings()
    paths = {"catalog": catalog, "responses": responses, "interactions": interactions}
    if intents is not None:
        paths["intents"] = intents
    read = {name: read_input(spark, name, path, schemas.REQUIRED[name]) for name, path in paths.items()}
    parsed = {
        name: parse_input(rows, schemas.INPUT_SCHEMAS[name], schemas.REQUIRED[name])
        for name, (rows, _) in read.items()
    }

    # `cut_lineage` materialises each validated input and cuts its lineage, so that the plans built on top
    # stay shallow: analysing the deep plans took longer than running them on small inputs.
    checked: dict[str, DataFrame] = {"catalog": validate_catalog(parsed["catalog"]).transform(cut_lineage)}
    catalog_ok = valid_rows(checked["catalog"], schemas.CATALOG)
    checked["responses"] = redact_user_id(
        validate_responses(parsed["responses"], catalog_ok, max_request_chars=cfg.max_request_chars), hash_key
    ).transform(cut_lineage)
    responses_ok = add_user_key(valid_rows(checked["responses"], schemas.RESPONSES), hash_key)
    checked["interactions"] = validate_interactions(
        parsed["interactions"], responses_ok, catalog_ok
    ).transform(cut_lineage)
    interactions_ok = valid_rows(checked["interactions"], schemas.INTERACTIONS)
    intents_ok = None
    if intents is not None:
        checked["intents"] = validate_intents(parsed["intents"], responses_ok).transform(cut_lineage)
        intents_ok = valid_rows(checked["intents"], schemas.INTENTS)
    masked = 0
    if cfg.mask_pii:
        changed = (mask_text(F.col("request")) != F.col("request")) | F.exists(
            "history", lambda h: mask_text(h) != h
        )
        masked = responses_ok.where(changed).count()
        responses_ok = mask_columns(responses_ok, {"request": "string", "history": "array"})
        interactions_ok = mask_columns(interactions_ok, {"text": "string"})

    rw = cfg.rewards
    weights = rw.resolved_weights()
    propensity = (
        position_propensity(
            responses_ok, interactions_ok, max_ipw=rw.max_ipw, min_support=rw.min_position_support
        ).transform(cut_lineage)
        if rw.position_bias == "ipw"
        else None
    )
    values = track_values(
        responses_ok,
        interactions_ok,
        propensity,
        weights=weights,
        early_skip=rw.early_skip,
        clip=rw.track_clip,
    ).transform(cut_lineage)
    rewards = response_rewards(responses_ok, interactions_ok, values, weights=weights, clip=rw.track_clip)
    keyed = assign_split(add_prompt_id(responses_ok, hash_key), cfg.eval_fraction)
    shown = attach_tracks(keyed.join(rewards, "response_id"), catalog_ok)
    if cfg.shuffle_train_candidates:
        shown = shuffle_train_candidates(shown, seed)
    scored = render_responses(shown).transform(cut_lineage)
    best = best_per_prompt(scored)
    quarantine = quarantine_rows(checked["catalog"], "catalog")
    for name in list(paths)[1:]:
        quarantine = quarantine.unionByName(quarantine_rows(checked[name], name))
    if cfg.mask_pii:
        quarantine = quarantine.withColumn("raw", mask_text(F.col("raw")))

    pc = cfg.pairs
    frames = {
        "validated/responses": responses_ok.select(*schemas.VALIDATED_RESPONSES.fieldNames()),
        "validated/interactions": interactions_ok,
        "validated/catalog": catalog_ok,
        "quarantine": quarantine,
        "pairs": build_pairs(
            scored,
            interactions_ok,
            values,
            strategies=pc.strategies,
            min_margin=pc.min_margin,
            early_skip=rw.early_skip,
            max_per_prompt=pc.max_per_prompt,
            max_per_user=pc.max_per_user,
            edit_rejected=pc.edit_rejected,
            seed=seed,
        ),
        "unpaired": build_unpaired(
            scored, min_reward=cfg.unpaired_min_reward, max_reward=cfg.unpaired_max_reward
        ),
        "sft": build_sft(reshuffled_copies(best, cfg.sft_shuffles, seed), sft_min_reward=cfg.sft_min_reward),
        "eval": build_eval(best, scored, intents_ok),
    }
    out_dir = Path(out).resolve()
    check_replaceable(out_dir)
    named = sorted(set(pc.strategies))
    per_strategy = [F.count_if(F.col("strategy") == name).alias(name) for name in named]
    with publishing(out_dir) as tmp:  # a crash before the end leaves only a hidden temporary directory
        written = write_observed(frames, tmp, also={"pairs": per_strategy})
        inputs = {}
        for name, path in paths.items():
            rows_out, by_reason = reason_counts(checked[name])
            rows, counted = read[name]
            # Rows in, and the input's fingerprint: JSON Lines were counted when their columns were checked.
            seen = output_entry(rows, path) if counted is None else fingerprint(path, counted)
            inputs[name] = {
                **input_entry(path, seen["rows"], rows_out, by_reason),
                "fingerprint": seen["fingerprint"],
            }
        check_accounting(inputs)
        outputs = {name: fingerprint(str(out_dir / name), seen) for name, seen in written.items()}
        manifest = {
            "prompt_format": PROMPT_FORMAT,
            "inputs": inputs,
            "outputs": outputs,
            "config": {
                **cfg.model_dump(mode="json", exclude={"hash_key", "spark_master", "spark_conf"}),
                "seed": seed,
            },
            "strategy_counts": {
                name: int(written["pairs"][name]) for name in named if written["pairs"][name]
            },
            "position_propensity": []
            if propensity is None
            else [r.asDict() for r in propensity.orderBy("position").collect()],
            "requests_masked": masked,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command-line entry for ``spark-submit data_prep/job.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", required=True)
    parser.add_argument("--interactions", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--intents", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default=None, help="settings as JSON or YAML (a recipe's prep section)")
    parser.add_argument(
        "--hash-key", default=os.environ.get("ENCORE_HASH_KEY"), help="default: $ENCORE_HASH_KEY"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default=None, help="Spark master; default: spark-submit's, else local[*]")
    args = parser.parse_args(argv)
    if not args.hash_key:
        parser.error("a hash key is required: --hash-key or ENCORE_HASH_KEY")
    try:
        settings = load_settings(args.config) if args.config else PrepSettings()
    except (OSError, ValueError) as exc:
        parser.error(f"--config {args.config}: {exc}")

    from data_prep.session import get_spark

    spark = get_spark(args.master)
    manifest = run(
        spark,
        responses=args.responses,
        interactions=args.interactions,
        catalog=args.catalog,
        intents=args.intents,
        out=args.out,
        hash_key=args.hash_key,
        settings=settings,
        seed=args.seed,
    )
    counts = {name: entry["rows"] for name, entry in manifest["outputs"].items()}
    print(json.dumps({"out": args.out, "rows": counts}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
