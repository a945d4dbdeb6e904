"""The promotion rule (pure) and the all-or-nothing alias move (on a real SQLite MLflow registry)."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from encore.registry.promote import (
    FLOORS,
    AliasConflict,
    alias_version,
    decide,
    floor_tags,
    move_alias,
    parse_floor,
    significant,
    version_floors,
)
from evaluation.paired import PairedDelta

GOOD = {"fulfillment": 0.60, "format_valid": 0.95, "grounded": 0.99, "distinct_artist_ratio": 0.80}


def failed(decision) -> list[tuple[str, str]]:
    return [(c.rule, c.metric) for c in decision.checks if not c.passed]


def test_a_candidate_that_wins_by_the_margin_with_no_worse_guardrail_is_promoted():
    champion = GOOD | {"fulfillment": 0.50}
    decision = decide(GOOD, champion, margin=0.05)
    assert decision.promote and decision.reasons == []
    assert [c.rule for c in decision.checks] == ["floor"] * len(FLOORS) + ["primary"] + ["guardrail"] * 3


def test_a_win_smaller_than_the_margin_is_refused():
    decision = decide(GOOD, GOOD | {"fulfillment": 0.58}, margin=0.05)
    assert not decision.promote
    assert failed(decision) == [("primary", "fulfillment")]


def test_a_tie_is_refused_even_with_a_zero_margin():
    assert not decide(GOOD, GOOD, margin=0.0).promote


def test_a_worse_guardrail_blocks_a_better_primary_metric():
    champion = GOOD | {"fulfillment": 0.30, "distinct_artist_ratio": 0.90}
    decision = decide(GOOD, champion)
    assert not decision.promote
    assert failed(decision) == [("guardrail", "distinct_artist_ratio")]
    assert "worse" in decision.reasons[0]


def test_the_tolerance_lets_a_guardrail_dip_that_little():
    champion = GOOD | {"fulfillment": 0.30, "grounded": 1.0}
    assert not decide(GOOD, champion).promote
    assert decide(GOOD, champion, tolerance=0.02).promote


def test_a_guardrail_the_candidate_lacks_but_the_champion_has_counts_as_worse():
    candidate = {k: v for k, v in GOOD.items() if k != "distinct_artist_ratio"}
    decision = decide(candidate, GOOD | {"fulfillment": 0.1}, floors={})
    assert failed(decision) == [("guardrail", "distinct_artist_ratio")]


def test_with_no_champion_the_floors_decide():
    assert decide(GOOD, None).promote
    below = GOOD | {"grounded": 0.90}
    decision = decide(below, None)
    assert not decision.promote and failed(decision) == [("floor", "grounded")]


def test_a_metric_missing_from_the_eval_fails_its_floor_and_a_missing_primary_metric_refuses():
    no_lines = {"format_valid": 0.0, "grounded": 0.0, "fulfillment": 0.0}  # nothing parsed: no diversity
    assert ("floor", "distinct_artist_ratio") in failed(decide(no_lines, None))
    no_intents = {k: v for k, v in GOOD.items() if k != "fulfillment"}
    assert failed(decide(no_intents, None)) == [("primary", "fulfillment")]


def test_lower_is_better_metrics_work_as_primary_and_as_floor():
    candidate = GOOD | {"hallucination_rate": 0.02}
    champion = GOOD | {"hallucination_rate": 0.10}
    assert decide(candidate, champion, primary="hallucination_rate", margin=0.05).promote
    assert not decide(champion, candidate, primary="hallucination_rate").promote
    assert not decide(champion, None, floors={"hallucination_rate": 0.05}).promote


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowClient, str]:
    """One SQLite store for the module (creating one runs MLflow's migrations: seconds)."""
    tmp = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    return client, client.create_experiment("e", artifact_location=str(tmp / "artifacts"))


@pytest.fixture
def registry(store: tuple[MlflowClient, str], request: pytest.FixtureRequest) -> tuple[MlflowClient, str]:
    """A registered model of three versions, named for the test."""
    client, experiment = store
    name = request.node.name.removeprefix("test_")[:60]
    client.create_registered_model(name)
    for _ in range(3):
        run = client.create_run(experiment)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return client, name


def test_move_alias_keeps_the_previous_champion(registry: tuple[MlflowClient, str]):
    client, m = registry
    move_alias(client, m, "champion", "1", None)
    assert alias_version(client, m, "champion") == "1"
    assert alias_version(client, m, "previous-champion") is None
    move_alias(client, m, "champion", "2", "1")
    assert alias_version(client, m, "champion") == "2"
    assert alias_version(client, m, "previous-champion") == "1"


def test_move_alias_refuses_when_the_champion_moved_meanwhile(registry: tuple[MlflowClient, str]):
    client, m = registry
    move_alias(client, m, "champion", "1", None)
    with pytest.raises(AliasConflict):
        move_alias(client, m, "champion", "3", None)  # evaluated when there was no champion
    assert alias_version(client, m, "champion") == "1"


def test_a_failed_move_puts_every_alias_back(registry: tuple[MlflowClient, str]):
    client, m = registry
    move_alias(client, m, "champion", "1", None)
    move_alias(client, m, "champion", "2", "1")  # champion 2, previous-champion 1
    # The candidate's version is deleted between evaluation and the move: the second step fails after
    # the first (previous-champion → 2) succeeded.
    client.delete_model_version(m, "3")
    with pytest.raises(MlflowException):
        move_alias(client, m, "champion", "3", "2")
    assert alias_version(client, m, "champion") == "2"
    assert alias_version(client, m, "previous-champion") == "1"


def test_a_win_within_its_noise_is_refused_when_standard_errors_are_asked_for():
    """The H200 sweep's best DPO against SFT (docs/benchmarks.md): +0.006 ± 0.005 on 65 requests."""
    champion = GOOD | {"fulfillment": 0.594}
    noisy = PairedDelta("fulfillment", 65, 0.006, 0.005, 15, 15)
    plain = decide(GOOD, champion, margin=0.005, paired=noisy)
    assert plain.promote  # the margin alone lets it through
    assert "± 0.005" in plain.checks[len(FLOORS)].why  # and the reason shows the noise
    strict = decide(GOOD, champion, margin=0.005, paired=noisy, min_z=2)
    assert not strict.promote
    assert failed(strict) == [("primary", "fulfillment")]
    assert "not 2 standard errors" in strict.reasons[0]
    clear = PairedDelta("fulfillment", 65, 0.006, 0.002, 30, 2)
    assert decide(GOOD, champion, margin=0.005, paired=clear, min_z=2).promote


def test_min_z_weighs_the_gain_in_the_metrics_direction_and_needs_paired_rows():
    assert significant(PairedDelta("sim_skip_rate", 10, -0.05, 0.01, 8, 1), -1, 2)
    assert not significant(PairedDelta("sim_skip_rate", 10, 0.05, 0.01, 1, 8), -1, 2)
    assert significant(PairedDelta("fulfillment", 10, 0.1, 0.0, 10, 0), 1, 2)  # every request gained alike
    assert not significant(None, 1, 2)
    assert not significant(PairedDelta("fulfillment", 1, 0.1, None, 1, 0), 1, 2)
    assert not decide(GOOD, GOOD | {"fulfillment": 0.5}, min_z=2).promote  # no paired rows: no evidence


def test_a_guardrail_worse_by_less_than_the_printed_precision_says_by_how_much():
    """As on the real SmolLM2 runs: grounded 0.99498 against 0.99512 prints as 0.995 against 0.995."""
    decision = decide(GOOD | {"grounded": 0.99498}, GOOD | {"grounded": 0.99512, "fulfillment": 0.5})
    assert failed(decision) == [("guardrail", "grounded")]
    assert decision.reasons == ["grounded 0.995 vs champion 0.995: worse by 0.00014"]


def test_a_floor_is_metric_equals_number_for_a_metric_with_a_better_side():
    assert parse_floor("distinct_artist_ratio=0.4") == ("distinct_artist_ratio", 0.4)
    assert parse_floor("hallucination_rate=0.05") == ("hallucination_rate", 0.05)
    with pytest.raises(ValueError, match="grounded=high: want METRIC=NUMBER"):
        parse_floor("grounded=high")
    with pytest.raises(ValueError, match="n_requests is neither"):
        parse_floor("n_requests=3")


def test_a_versions_floors_are_its_floor_tags():
    tags = {"floor.distinct_artist_ratio": "0.4", "floor.grounded": "0.9", "metric.grounded": "0.99"}
    assert version_floors(tags) == {"distinct_artist_ratio": 0.4, "grounded": 0.9}
    assert version_floors({"primary_metric": "fulfillment"}) == {}
    floors = {"distinct_artist_ratio": 0.4, "hallucination_rate": 1 / 30}
    assert version_floors(floor_tags(floors)) == floors  # exactly: the tags hold repr(float)
