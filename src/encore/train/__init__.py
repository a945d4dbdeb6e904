"""Training helpers shared by the SFT and DPO stages: LoRA configs, datasets, policy assembly."""
