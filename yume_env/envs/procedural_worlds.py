"""``ProceduralWorlds`` moved to :mod:`yume_env.procedural.worlds`; this name keeps working.

The backend now holds N :class:`~yume_env.procedural.world.ProceduralWorld` directly (no env
inside); import it from :mod:`yume_env.procedural` in new code.
"""

from yume_env.procedural.worlds import ProceduralWorlds, ProceduralWorldsMark

__all__ = ["ProceduralWorlds", "ProceduralWorldsMark"]
