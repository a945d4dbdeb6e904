"""A SparkSession configured the way every data_prep job and test expects (UTC, quiet, no UI)."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession


def get_spark(
    master: str | None = "local[*]", app_name: str = "encore-data-prep", shuffle_partitions: int = 4
) -> SparkSession:
    """Get or create a SparkSession.

    Args:
        master: Spark master URL; None leaves it to ``spark-submit``.
        app_name: Application name shown in Spark logs.
        shuffle_partitions: ``spark.sql.shuffle.partitions``; the default 200 makes small jobs slow.

    Returns:
        The active SparkSession.
    """
    # Workers would otherwise start the first `python3` on PATH, which may lack pandas/pyarrow.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
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
