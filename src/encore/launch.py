"""Launching one training stage on several processes: `accelerate launch`, or Spark's TorchDistributor.

`accelerate launch` starts the same `encore train <stage> RECIPE …` command in every process, without
the launcher options; TorchDistributor calls :func:`spark_worker`, which runs the stage as that command
would. Either way a launched process runs the stage itself and never launches again; the
`ENCORE_LAUNCHED` marker in its environment makes a stray `--launcher` an error rather than a
process tree. Inside, `tracking.is_main_process` (the RANK that torchrun sets) keeps MLflow and
the saving of the adapter to rank 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LAUNCHED_ENV = "ENCORE_LAUNCHED"


def stage_argv(stage: str, recipe: Path, overrides: list[str], resume: bool | None) -> list[str]:
    """The `encore` arguments every launched process runs: the stage, the recipe and its overrides."""
    argv = ["train", stage, str(recipe)]
    for item in overrides:
        argv += ["--set", item]
    if resume is not None:
        argv.append("--resume" if resume else "--no-resume")
    return argv


def accelerate_command(config: Path, argv: list[str], num_processes: int | None = None) -> list[str]:
    """`accelerate launch --config_file CONFIG … -m encore.cli ARGV`, with this interpreter.

    The config is read with accelerate's own loader first, so a bad file fails here, by name.
    """
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    cfg = load_config_from_file(str(config))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    if num_processes is not None:
        cmd += ["--num_processes", str(num_processes)]
    processes = num_processes or cfg.num_processes
    if cfg.distributed_type == DistributedType.MULTI_CPU and not cfg.mpirun_config and processes > 1:
        # accelerate starts the processes of a MULTI_CPU config through mpirun only; with no MPI
        # hostfile it starts one. Its torchrun launcher (`--multi_gpu`, despite the name) starts
        # them all here; each then runs on the CPU with gloo (ACCELERATE_USE_CPU, below).
        cmd.append("--multi_gpu")
    return [*cmd, "-m", "encore.cli", *argv]


def run_accelerate(config: Path, argv: list[str], num_processes: int | None = None) -> int:
    """Run the stage under `accelerate launch`; returns its exit status."""
    from accelerate.commands.config.config_args import load_config_from_file

    env = {**os.environ, LAUNCHED_ENV: "accelerate"}
    if load_config_from_file(str(config)).use_cpu:
        env["ACCELERATE_USE_CPU"] = "true"  # what accelerate's own CPU launcher sets
    return subprocess.run(accelerate_command(config, argv, num_processes), env=env).returncode


def run_spark(
    stage: str, recipe: Path, overrides: list[str], resume: bool | None, num_processes: int, master: str
) -> None:
    """Run the stage through `TorchDistributor` on `num_processes` processes.

    A `local[…]` master runs them on this machine (torchrun, local mode); a cluster master runs
    them as Spark tasks on its executors, which need encore installed and the recipe's output
    directory on a shared file system. GPUs are used where the driver has CUDA (local mode) or
    where the cluster gives tasks GPUs (`spark.task.resource.gpu.amount`).
    """
    import torch
    from pyspark.ml.torch.distributor import TorchDistributor

    from data_prep.session import get_spark

    local = master.startswith("local")
    spark = get_spark(master, app_name=f"encore-train-{stage}")
    try:
        use_gpu = (
            torch.cuda.is_available() if local else bool(spark.conf.get("spark.task.resource.gpu.amount", ""))
        )
        distributor = TorchDistributor(num_processes=num_processes, local_mode=local, use_gpu=use_gpu)
        distributor.run(spark_worker, stage, str(recipe), overrides, resume)
    finally:
        spark.stop()


def spark_worker(stage: str, recipe: str, overrides: list[str], resume: bool | None) -> None:
    """One TorchDistributor process: the stage, run in this process as `encore train STAGE RECIPE` runs it.

    TorchDistributor pickles this function by reference and calls it in every process torchrun
    starts (RANK, WORLD_SIZE and MASTER_ADDR set). An error propagates, so the distributor reports
    the failure instead of a missing result.
    """
    from encore import tracking
    from encore.config import load_recipe
    from encore.stages import run_stage
    from encore.train.resume import RESUME_ENV

    os.environ[LAUNCHED_ENV] = "spark"
    if resume is not None:  # an executor on a cluster does not inherit the driver's environment
        os.environ[RESUME_ENV] = "1" if resume else "0"
    r = load_recipe(recipe, overrides)
    tracking.setup(r)
    run_stage(r, stage)
