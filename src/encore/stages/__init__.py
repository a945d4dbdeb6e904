"""One entry per pipeline stage (prep, sft, dpo, eval, register), each a `main(recipe, ...)`."""
