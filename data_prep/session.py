"""A SparkSession configured the way every data_prep job and test expects (UTC, quiet, no UI)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from pyspark import SparkConf, SparkContext, StorageLevel
from pyspark.sql import DataFrame, SparkSession


def _local_cores(master: str | None) -> int | None:
    match = re.fullmatch(r"local\[(\d+|\*)\]", master or "")
    if master == "local":
        return 1
    if match is None:
        return None
    return os.cpu_count() or 1 if match[1] == "*" else int(match[1])


def get_spark(
    master: str | None = "local[*]",
    app_name: str = "encore-data-prep",
    shuffle_partitions: int | None = None,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Get or create a SparkSession; settings given to ``spark-submit`` (``--conf``, spark-defaults.conf) win.

    Args:
        master: Spark master URL; None leaves it to ``spark-submit``.
        app_name: Application name shown in Spark logs.
        shuffle_partitions: ``spark.sql.shuffle.partitions``; by default the core count of a
            ``local[N]`` master, else 8 (Spark's 200 makes small jobs crawl; raise it for big data
            with ``--conf spark.sql.shuffle.partitions=N``).
        conf: More Spark settings (a recipe's ``prep.spark_conf``), over the defaults here.
            ``spark.driver.extraJavaOptions`` takes effect only when this call starts the JVM (local
            mode, not under ``spark-submit``), and is added to the UTC time zone option.

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
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        **(conf or {}),
    }
    # Builder settings override spark-submit's, so only fill in what it left unset: the JVM gateway
    # (spark-submit's own, when it launched this driver) holds its settings as system properties.
    # A JVM started here gets UTC as its default zone (PYSPARK_SUBMIT_ARGS' --conf still win).
    java_options = " ".join(
        ["-Duser.timezone=UTC", settings.pop("spark.driver.extraJavaOptions", "")]
    ).strip()
    launch = SparkConf(loadDefaults=False).set("spark.driver.extraJavaOptions", java_options)
    SparkContext._ensure_initialized(conf=launch)
    submitted = SparkConf()
    for key, value in settings.items():
        if not submitted.contains(key):
            builder = builder.config(key, value)
    # The pyspark-shell launcher turns the console progress bar on by itself: always off in job logs.
    spark = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def cut_lineage(frame: DataFrame) -> DataFrame:
    """Materialise `frame` and cut its lineage, surviving the loss of an executor.

    With a checkpoint directory set (a reliable, shared filesystem on a cluster) the frame is written
    there; otherwise it is a local checkpoint kept on the local disks of two executors, so that a
    worker dying mid-job leaves a copy of every block (with `localCheckpoint()`'s default single copy
    the job fails: the lost blocks' lineage is gone, so they cannot be recomputed). On disk, not in
    memory: the memory store's serialized blocks of the rendered responses outgrew the heap at 16M
    events (its accounting of them is approximate), and the OS page cache serves the reads anyway.

    The result's columns get fresh attribute ids (`toDF`): a checkpoint keeps the ids of the plan it
    cut, and a join of two frames cut from one lineage (the responses and the track values built from
    them) then fails in analysis with `Conflicting attributes` when adaptive execution is off.
    """
    if frame.sparkSession.sparkContext.getCheckpointDir():
        cut = frame.checkpoint()
    else:
        cut = frame.localCheckpoint(storageLevel=StorageLevel.DISK_ONLY_2)
    return cut.toDF(*cut.columns)
