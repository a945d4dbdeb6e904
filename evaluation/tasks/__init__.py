"""Evaluation tasks, one per file: format validity, grounding (candidates and open generation), fulfilment of
the hidden intent, diversity, popularity bias, simulated users, preference accuracy, CPCD retrieval."""
