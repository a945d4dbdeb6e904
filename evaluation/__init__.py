"""Evaluation of playlist generators: batched generation, catalog grounding, one task per file, reports."""
