"""Where models registered before the ground package existed find the format check: `playlist.prompts`.

A pyfunc registered before the move imports `encore.prompts.check_prompt_format` (see
`encore/inference.py` for why that import lands here). New code imports `playlist.prompts`.
"""

from playlist.prompts import check_prompt_format

__all__ = ["check_prompt_format"]
