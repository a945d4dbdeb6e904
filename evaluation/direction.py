"""Which way is better for each metric the eval tasks and the trainers report (deltas, floors, the gate)."""

from __future__ import annotations

import re

# Which way is better, by metric (the last path segment, e.g. `eval/dpo/grounded` → `grounded`).
HIGHER = frozenset(
    {
        "format_valid", "format_parses", "grounded", "fully_grounded", "in_candidates", "fulfillment",
        "grounded_exact", "grounded_normalised", "grounded_fuzzy", "distinct_artists",
        "distinct_artist_ratio", "catalog_coverage", "sim_saves", "sim_save_rate", "sim_thumbs_up", "sim_satisfaction",
        "preference_accuracy", "reward_margin", "roundtrip_match", "accuracies", "margins",
        "pair_accuracy", "intent_agreement",
    }
)  # fmt: skip
LOWER = frozenset(
    {"format_duplicates", "hallucination_rate", "repeated_artists", "max_artist_share", "sim_skip_rate",
     "sim_thumbs_down", "seconds", "brier", "ece"}
)  # fmt: skip
_RANKING = re.compile(r"^(hit|mrr|recall)@\d+$")


def direction(metric: str) -> int:
    """+1 when a higher value is better, -1 when lower is better, 0 when neither (counts, lengths, popularity)."""
    parts = metric.split("/")
    if "fulfillment" in parts:  # fulfillment/<constraint> and fulfillment/category/<category>
        return 1
    leaf = parts[-1]
    if leaf.startswith("n_"):
        return 0
    if leaf in HIGHER or _RANKING.match(leaf):
        return 1
    if leaf in LOWER or leaf.endswith("loss"):
        return -1
    return 0
