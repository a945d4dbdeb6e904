"""A SparkSession configured the way every data_prep job and test expects (UTC, quiet, no UI)."""

from __future__ import annotations

import os
import re
import sys

from pyspark.sql import SparkSession


def _local_cores(master: str | None) -> int | None:
    match = re.fullmatch(r"local\[(\d+|\*)\]", master or "")
    if master == "local":
        return 1
    if match is None:
        return None
    return os.cpu_count() or 1 if match[1] == "*" else int(match[1])


def get_spark(
    master: str | None = "local[*]", app_name: str = "encore-data-prep", shuffle_partitions: int | None = None
) -> SparkSession:
    """Get or create a SparkSession.

    Args:
        master: Spark master URL; None leaves it to ``spark-submit``.
        app_name: Application name shown in Spark logs.
        shuffle_partitions: ``spark.sql.shuffle.partitions``; by default the core count of a
            ``local[N]`` master, else 8 (Spark's 200 makes small jobs crawl; raise it for big data).

    Returns:
        The active SparkSession.
    """
    # Workers would otherwise start the first `python3` on PATH, which may lack pandas/pyarrow.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if shuffle_partitions is None:
        shuffle_partitions = _local_cores(master) or 8
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    spark = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark
