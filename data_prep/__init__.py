"""Spark jobs that turn logged playlist feedback into TRL-ready pairs, SFT and eval datasets."""
