"""Declared schemas of every data_prep input and output: the one place their columns are spelled."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _fields(*spec: tuple[str, object]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in spec])  # type: ignore[arg-type]


STRINGS = ArrayType(StringType())

# Raw logs, canonical types (docs/architecture.md, "Raw feedback logs").
RESPONSES = _fields(
    ("response_id", StringType()),
    ("session_id", StringType()),
    ("user_id", StringType()),
    ("turn", IntegerType()),
    ("ts", TimestampType()),
    ("request", StringType()),
    ("history", STRINGS),
    ("candidates", STRINGS),
    ("track_ids", STRINGS),
    ("policy", StringType()),
)
INTERACTIONS = _fields(
    ("response_id", StringType()),
    ("track_id", StringType()),
    ("position", IntegerType()),
    ("event", StringType()),
    ("ms_played", LongType()),
    ("track_ms", LongType()),
    ("ts", TimestampType()),
    ("text", StringType()),
)
CATALOG = _fields(
    ("track_id", StringType()),
    ("title", StringType()),
    ("artist", StringType()),
    ("album", StringType()),
    ("genre", StringType()),
    ("subgenre", StringType()),
    ("year", IntegerType()),
    ("duration_ms", LongType()),
    ("popularity", IntegerType()),
    ("energy", DoubleType()),
    ("valence", DoubleType()),
    ("danceability", DoubleType()),
    ("acousticness", DoubleType()),
    ("tempo", DoubleType()),
)
INTENTS = _fields(("response_id", StringType()), ("intent", StringType()))

INPUT_SCHEMAS = {"catalog": CATALOG, "responses": RESPONSES, "interactions": INTERACTIONS, "intents": INTENTS}

# Columns that must exist in every input file (else the job stops) and be non-null in every row
# (else the row is quarantined as missing_field). Track-level interaction events also need track_id.
REQUIRED = {
    "catalog": ("track_id", "title", "artist"),
    "responses": ("response_id", "session_id", "user_id", "turn", "request", "track_ids"),
    "interactions": ("response_id", "event"),
    "intents": ("response_id", "intent"),
}

# skip_1/skip_2/skip_3 are MSSD's skip labels (very briefly / briefly / most of the track played), for logs
# that carry the label instead of ms_played.
TRACK_EVENTS = ("play", "skip", "skip_1", "skip_2", "skip_3", "complete", "save", "like", "dislike", "remove")
RESPONSE_EVENTS = ("thumbs_up", "thumbs_down", "refine")
EVENTS = TRACK_EVENTS + RESPONSE_EVENTS

# Validated responses carry the keyed hash instead of the raw user id.
VALIDATED_RESPONSES = _fields(
    *[(f.name, f.dataType) for f in RESPONSES.fields if f.name != "user_id"], ("user_key", StringType())
)

QUARANTINE = _fields(("input", StringType()), ("reason", StringType()), ("raw", StringType()))

# The catalog attributes a prompt shows for a candidate: the fields of playlist.prompts.Track.
TRACK = _fields(
    ("track_id", StringType()),
    ("artist", StringType()),
    ("title", StringType()),
    ("genre", StringType()),
    ("year", IntegerType()),
    ("energy", DoubleType()),
    ("valence", DoubleType()),
)
MESSAGE = _fields(("role", StringType()), ("content", StringType()))
MESSAGES = ArrayType(MESSAGE)

TRACK_REWARDS = _fields(("response_id", StringType()), ("track_id", StringType()), ("reward", DoubleType()))
PROPENSITY = _fields(
    ("position", IntegerType()), ("shown", LongType()), ("examined", LongType()), ("propensity", DoubleType())
)
TRACK_VALUES = _fields(
    ("response_id", StringType()),
    ("track_id", StringType()),
    ("position", IntegerType()),
    ("reward", DoubleType()),
    ("value", DoubleType()),
)
RESPONSE_REWARDS = _fields(("response_id", StringType()), ("reward", DoubleType()))

PAIRS = _fields(
    ("prompt", MESSAGES),
    ("chosen", MESSAGES),
    ("rejected", MESSAGES),
    ("pair_id", StringType()),
    ("prompt_id", StringType()),
    ("user_key", StringType()),
    ("reward_chosen", DoubleType()),
    ("reward_rejected", DoubleType()),
    ("margin", DoubleType()),
    ("strategy", StringType()),
    ("split", StringType()),
)
SFT = _fields(
    ("messages", MESSAGES),
    ("prompt_id", StringType()),
    ("user_key", StringType()),
    ("reward", DoubleType()),
    ("origin", StringType()),  # feedback (a high-reward response) or curated (e.g. an MPD playlist)
    ("split", StringType()),
)
# Unpaired rows for KTO: one response, desirable (label true) or not.
UNPAIRED = _fields(
    ("prompt", MESSAGES),
    ("completion", MESSAGES),
    ("label", BooleanType()),
    ("prompt_id", StringType()),
    ("user_key", StringType()),
    ("reward", DoubleType()),
    ("split", StringType()),
)
EVAL = _fields(
    ("prompt_id", StringType()),
    ("user_key", StringType()),
    ("request", StringType()),
    ("history", STRINGS),
    ("candidates", STRINGS),
    ("prompt", MESSAGES),
    ("intent", StringType()),
    ("reference", STRINGS),
)
