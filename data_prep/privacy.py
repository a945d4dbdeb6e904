"""Masking of personal data in free text: e-mail addresses and phone numbers become placeholders.

Requests are typed by people, who sometimes paste contact details ("send it to ana@example.com").
Masking runs inside the job before any text reaches a training set, an eval set or the quarantine.
A phone number is 9 to 15 digits, optionally with a leading ``+``, written with spaces, dots,
dashes or parentheses between groups; a year range such as ``1990-1999`` (8 digits) stays.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# A digit run with separators, 9-15 digits in all, not glued to letters or other digits.
PHONE = r"(?<![\w+])\+?(?=(?:[\s().-]{0,2}\d){9,15}(?![\s().-]{0,2}\d|\w))[(\d](?:[\s().-]{0,2}\d)+\)?"
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"


def mask_text(text: Column) -> Column:
    """``text`` with e-mail addresses and phone numbers replaced (null stays null)."""
    return F.regexp_replace(F.regexp_replace(text, EMAIL, EMAIL_MASK), PHONE, PHONE_MASK)


def mask_columns(df: DataFrame, columns: dict[str, str]) -> DataFrame:
    """Mask the named columns: ``{"request": "string", "history": "array"}``."""
    for name, kind in columns.items():
        masked = F.transform(name, mask_text) if kind == "array" else mask_text(F.col(name))
        df = df.withColumn(name, masked)
    return df
