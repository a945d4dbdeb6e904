"""Evaluation tasks, one per file: format validity, catalog grounding, fulfilment of the hidden intent."""
