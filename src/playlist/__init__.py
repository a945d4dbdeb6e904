"""The ground floor of encore: what every part shares, importing none of the others.

The prompt and answer format (`prompts`), grounding a completion in the catalog (`grounding`),
candidate retrieval (`retrieval`), batched generation (`generate`), the keyed user hash and split
(`keys`), request → playlist inference and the registered pyfunc (`inference`, `pyfunc_model`),
atomic publishing of output directories (`publish`) and the feedback simulator (`simulator`).
`data_prep` and `evaluation` import only this package; `encore` sits on top of all three. The layers
are a contract that `lint-imports` checks (pyproject.toml, `[tool.importlinter]`).
"""
