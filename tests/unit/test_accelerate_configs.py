"""The accelerate configs under recipes/accelerate/, loaded by accelerate's own loader, and the launch command built from them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import launch_command_parser
from accelerate.utils import DistributedType

from encore.launch import accelerate_command, stage_argv

CONFIGS = Path(__file__).resolve().parents[2] / "recipes" / "accelerate"


def load(name: str) -> ClusterConfig:
    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert isinstance(config, ClusterConfig)
    return config


def test_the_four_configs_exist() -> None:
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == ["cpu_ddp", "ddp", "fsdp2", "zero3"]


def test_cpu_ddp_is_two_processes_on_the_cpu() -> None:
    config = load("cpu_ddp")
    assert config.distributed_type == DistributedType.MULTI_CPU
    assert config.num_processes == 2 and config.num_machines == 1
    assert config.use_cpu is True
    assert config.mixed_precision == "no"


def test_ddp_is_one_process_per_gpu_in_bf16() -> None:
    config = load("ddp")
    assert config.distributed_type == DistributedType.MULTI_GPU
    assert config.num_processes == 8 and config.use_cpu is False
    assert config.mixed_precision == "bf16"


def test_fsdp2_shards_with_torch_fsdp2_and_saves_a_full_state_dict() -> None:
    config = load("fsdp2")
    assert config.distributed_type == DistributedType.FSDP
    assert config.fsdp_config["fsdp_version"] == 2
    assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert config.num_processes == 8 and config.mixed_precision == "bf16"


def test_zero3_is_deepspeed_stage_3_and_gathers_weights_to_save() -> None:
    config = load("zero3")
    assert config.distributed_type == DistributedType.DEEPSPEED
    assert config.deepspeed_config["zero_stage"] == 3
    assert config.deepspeed_config["zero3_save_16bit_model"] is True
    assert config.num_processes == 8 and config.mixed_precision == "bf16"


@pytest.mark.parametrize("name", ["cpu_ddp", "ddp", "fsdp2", "zero3"])
def test_launch_command_parses_with_accelerates_own_parser(name: str) -> None:
    argv = stage_argv("sft", Path("recipes/smoke/pipeline.yaml"), ["lora.dropout=0"], resume=True)
    cmd = accelerate_command(CONFIGS / f"{name}.yaml", argv)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    args = launch_command_parser().parse_args(cmd[3:])
    assert args.config_file == str(CONFIGS / f"{name}.yaml")
    assert args.module and args.training_script == "encore.cli"
    assert args.training_script_args == [
        *["train", "sft", "recipes/smoke/pipeline.yaml", "--set", "lora.dropout=0", "--resume"]
    ]
    assert "--launcher" not in args.training_script_args  # a launched process never launches again
    # Only the CPU config needs torchrun's launcher in place of mpirun (see cpu_ddp.yaml).
    assert args.multi_gpu is (name == "cpu_ddp")


def test_one_cpu_process_is_not_forced_onto_the_multi_process_launcher() -> None:
    cmd = accelerate_command(CONFIGS / "cpu_ddp.yaml", ["train", "sft", "r.yaml"], num_processes=1)
    args = launch_command_parser().parse_args(cmd[3:])
    assert args.num_processes == 1 and not args.multi_gpu
