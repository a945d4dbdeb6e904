"""`data_prep.session.get_spark` fills in defaults but never overrides what `spark-submit` was told."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest

pytestmark = pytest.mark.integration

SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"
PROBE = """
from data_prep.session import get_spark
spark = get_spark(None)
conf = spark.sparkContext.getConf()
zone = spark.conf.get("spark.sql.session.timeZone")
print("CONF", spark.conf.get("spark.sql.shuffle.partitions"), conf.get("spark.ui.enabled"), zone)
"""


def _submit(tmp_path: Path, *conf: str) -> list[str]:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = [str(SPARK_SUBMIT), "--master", "local[1]", *conf, str(script)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return next(line for line in done.stdout.splitlines() if line.startswith("CONF")).split()[1:]


def test_spark_submit_conf_wins_and_unset_keys_get_the_session_defaults(tmp_path: Path) -> None:
    # One driver (a JVM start is the cost): partitions given to spark-submit, the UI and zone left unset.
    assert _submit(tmp_path, "--conf", "spark.sql.shuffle.partitions=3") == ["3", "false", "UTC"]


RECIPE_PROBE = """
from data_prep.session import get_spark
spark = get_spark("local[1]", conf={"spark.sql.shuffle.partitions": "5", "spark.driver.extraJavaOptions": "-Dencore.probe=c1"})
system = spark._jvm.java.lang.System
print("CONF", spark.conf.get("spark.sql.shuffle.partitions"), system.getProperty("encore.probe"), system.getProperty("user.timezone"))
"""


def test_recipe_conf_reaches_the_session_and_the_jvm_it_starts(tmp_path: Path) -> None:
    """A recipe's `prep.spark_conf`: settings over the defaults, JVM options beside the UTC zone."""
    script = tmp_path / "probe.py"
    script.write_text(RECIPE_PROBE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = next(line for line in done.stdout.splitlines() if line.startswith("CONF")).split()[1:]
    assert found == ["5", "c1", "UTC"]


def test_adaptive_execution_off_gives_the_same_outputs(spark, tmp_path: Path) -> None:
    """A cluster may turn AQE off: the job still analyses (joins of frames cut from one lineage, see
    `data_prep.session.cut_lineage`) and writes exactly what it writes with AQE on."""
    from data_prep.job import run
    from playlist.simulator import simulate

    logs = {
        name: str(path)
        for name, path in simulate(tmp_path / "raw", seed=0, n_users=6, n_artists=40, n_tracks=200).items()
    }
    fingerprints = {}
    for adaptive in ("true", "false"):
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)
        try:
            manifest = run(spark, **logs, out=str(tmp_path / f"aqe-{adaptive}"), hash_key="k")
        finally:
            spark.conf.unset("spark.sql.adaptive.enabled")
        fingerprints[adaptive] = {name: entry["fingerprint"] for name, entry in manifest["outputs"].items()}
    assert fingerprints["true"] == fingerprints["false"]
    assert manifest["outputs"]["pairs"]["rows"] > 0
