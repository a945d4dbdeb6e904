"""Keyed hashes and the by-user train/eval split: user_key, prompt_id, pair_id, and user-id redaction.

``user_key`` is HMAC-SHA256(key, user_id) in hex, first 16 characters, computed with Spark's own
``sha2`` (no Python UDF): HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)), with the two padded keys
prepared once on the driver. A user is in eval when ``int(user_key, 16) % 1000 < eval_fraction * 1000``.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from data_prep.validation import SOURCE_PREFIX
from playlist.keys import FIELD_SEP as _SEP
from playlist.keys import KEY_CHARS

_BLOCK = 64  # SHA-256 block size in bytes
_USER_ID = r'"user_id"\s*:\s*(?:"(?:[^"\\]|\\.)*"|[^,}\s]*)'


def _pads(key: str) -> tuple[bytes, bytes]:
    raw = key.encode("utf-8")
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in raw), bytes(b ^ 0x5C for b in raw)


def keyed_hash(value: Column, key: str, chars: int = KEY_CHARS) -> Column:
    """HMAC-SHA256 of a string column under ``key``, as the first ``chars`` hex digits.

    Args:
        value: String column (null gives null).
        key: Secret key; never written to any output.
        chars: Hex digits to keep.

    Returns:
        A string column equal to ``hmac.new(key, value, sha256).hexdigest()[:chars]``.
    """
    inner_pad, outer_pad = _pads(key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), F.encode(value, "UTF-8")), 256))
    return F.substring(F.sha2(F.concat(F.lit(outer_pad), inner), 256), 1, chars)


def add_user_key(df: DataFrame, key: str) -> DataFrame:
    """Replace ``user_id`` by its keyed hash ``user_key``."""
    return df.withColumn("user_key", keyed_hash(F.col("user_id"), key)).drop("user_id")


def add_prompt_id(df: DataFrame, key: str) -> DataFrame:
    """Add ``prompt_id``: a keyed hash of (session_id, turn, request), shared by the variants of a request."""
    text = F.concat_ws(_SEP, F.col("session_id"), F.col("turn").cast("string"), F.col("request"))
    return df.withColumn("prompt_id", keyed_hash(text, key))


def assign_split(df: DataFrame, eval_fraction: float) -> DataFrame:
    """Add ``split`` (``train``/``eval``) from ``user_key``, so a user's rows all land on one side."""
    bucket = F.conv(F.col("user_key"), 16, 10).cast("decimal(20,0)") % 1000
    return df.withColumn(
        "split", F.when(bucket < F.lit(round(eval_fraction * 1000)), F.lit("eval")).otherwise(F.lit("train"))
    )


def pair_id(prompt_id: Column, chosen_id: Column, rejected_id: Column) -> Column:
    """Stable id of a pair: a hash of the prompt and both response ids."""
    return F.substring(F.sha2(F.concat_ws(_SEP, prompt_id, chosen_id, rejected_id), 256), 1, KEY_CHARS)


def redact_user_id(df: DataFrame, key: str) -> DataFrame:
    """Replace the user id in the row as read by ``"user_key": "<hash>"`` (``<redacted>`` when unparsed).

    Quarantined rows keep their raw text for debugging, but a raw user id must never reach an output:
    in JSON text (``raw``) the field is rewritten; in a columnar row the source value is blanked and
    ``_src_user_key`` added, which :func:`data_prep.validation.raw_text` writes instead.
    """
    user_key = F.coalesce(keyed_hash(F.col("user_id"), key), F.lit("<redacted>"))
    if "raw" not in df.columns:
        return df.withColumn(f"{SOURCE_PREFIX}user_id", F.lit(None).cast("string")).withColumn(
            f"{SOURCE_PREFIX}user_key", user_key
        )
    replacement = F.concat(F.lit('"user_key": "'), user_key, F.lit('"'))
    return df.withColumn("raw", F.regexp_replace(F.col("raw"), F.lit(_USER_ID), replacement))
