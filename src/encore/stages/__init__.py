"""One entry per stage (prep, sft, dpo, kto, orpo, simpo, reward, grpo, eval, register, export), each a `main(recipe, ...)`."""
