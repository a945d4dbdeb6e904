"""Pure-Python parts of data_prep: row accounting, HMAC pads, shuffle-partition defaults."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from data_prep.manifest import RowAccountingError, check_accounting, input_entry
from data_prep.session import _local_cores
from data_prep.splits import _pads


def test_input_entry_and_accounting() -> None:
    entry = input_entry("r.jsonl", 10, 7, {"malformed_json": 1, "empty_request": 2})
    assert entry["rows_quarantined"] == 3
    check_accounting({"responses": entry})
    with pytest.raises(RowAccountingError, match=r"responses: in=11 out=7 quarantined=3"):
        check_accounting({"responses": input_entry("r.jsonl", 11, 7, {"malformed_json": 3})})


@pytest.mark.parametrize("key", ["", "k", "x" * 64, "y" * 65, "ключ"])
def test_pads_build_a_real_hmac(key: str) -> None:
    inner, outer = _pads(key)
    message = b"user-42"
    ours = hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()
    assert ours == hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_local_cores() -> None:
    assert _local_cores("local[1]") == 1
    assert _local_cores("local[3]") == 3
    assert _local_cores("local") == 1
    assert _local_cores("spark://host:7077") is None
    assert _local_cores(None) is None
