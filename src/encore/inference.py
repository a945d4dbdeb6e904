"""Where models registered before the ground package existed find their inference: `playlist.inference`.

A pyfunc registered before the move imports `encore.inference.PlaylistGenerator` in its `load_context`.
In a process that has already imported `encore` (`encore promote` comparing against such a champion,
`encore generate`), that import resolves here rather than in the code the model carries, so without
this module such a version cannot be loaded. New code imports `playlist.inference`.
"""

from playlist.inference import PlaylistGenerator

__all__ = ["PlaylistGenerator"]
