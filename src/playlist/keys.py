"""The job's keyed user hash and by-user split in plain Python, for code that runs without Spark.

:func:`user_key_of` equals :func:`data_prep.splits.keyed_hash` on one value, :func:`split_of`
:func:`data_prep.splits.assign_split` on one key and :func:`prompt_id_of`
:func:`data_prep.splits.add_prompt_id` on one row (``tests/integration/test_data_prep_transforms.py``
checks them against the Spark versions). ``encore collect`` uses them to answer only training users'
requests on a machine without Java or pyspark; ``evaluation/pair_labels.py`` to find a pair's intent.
"""

from __future__ import annotations

import hashlib
import hmac

KEY_CHARS = 16
FIELD_SEP = "\u001f"  # unit separator between hashed fields: cannot be confused with text inside one


def user_key_of(user_id: str, key: str, chars: int = KEY_CHARS) -> str:
    """HMAC-SHA256 of ``user_id`` under ``key`` as the first ``chars`` hex digits (the job's ``user_key``)."""
    return hmac.new(key.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:chars]


def prompt_id_of(session_id: str, turn: int, request: str, key: str) -> str:
    """The job's ``prompt_id`` of a response: the keyed hash of its session, turn and request."""
    return user_key_of(FIELD_SEP.join([session_id, str(turn), request]), key)


def split_of(user_key: str, eval_fraction: float) -> str:
    """The side of the split the job puts ``user_key``'s rows on (``train`` or ``eval``)."""
    return "eval" if int(user_key, 16) % 1000 < round(eval_fraction * 1000) else "train"
