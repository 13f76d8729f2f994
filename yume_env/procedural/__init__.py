"""The procedural ground-truth world: a seeded city rendered by a vectorised numpy ray caster.

- :mod:`.scene`: seeded, unbounded street-grid city (buildings, parks, plazas, yards, street trees).
- :mod:`.camera`: pose, per-frame motion of one block, collisions.
- :mod:`.events`: the event catalog (free text -> effect) and the lighting/weather it produces.
- :mod:`.renderer`: frames of a scene from camera poses.

The Gymnasium environment built on these is ``YumeProcedural-v0``
(:class:`yume_env.envs.procedural_env.YumeProceduralEnv`).
"""

from yume_env.procedural.camera import EYE_HEIGHT, move_block
from yume_env.procedural.events import CATALOG, CHANNELS, Event, match_event
from yume_env.procedural.renderer import Renderer
from yume_env.procedural.scene import Scene

__all__ = ["CATALOG", "CHANNELS", "EYE_HEIGHT", "Event", "Renderer", "Scene", "match_event", "move_block"]
