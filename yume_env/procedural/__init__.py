"""The procedural ground-truth world: a seeded city rendered by a vectorised numpy ray caster.

- :mod:`.scene`: seeded, unbounded street-grid city (buildings, parks, plazas, yards, street trees).
- :mod:`.camera`: pose, per-frame motion of one block, collisions.
- :mod:`.events`: the event catalog (free text -> effect) and the lighting/weather it produces.
- :mod:`.renderer`: frames of a scene from camera poses.
- :mod:`.timing`: :class:`RenderTiming`, how long a reset or step took (compares equal).
- :mod:`.spec`: :class:`ProceduralSpec`, the world arguments (frozen, checked once, ``build(n)``).
- :mod:`.world`: :class:`ProceduralWorld`, one world's state and stepping (reset, step,
  snapshot/restore, mark/rollback).
- :mod:`.worlds`: :class:`ProceduralWorlds`, N worlds behind the batched world protocol
  (:class:`yume_env.world.protocol.BatchedWorlds`).

The Gymnasium environment built on these is ``YumeProcedural-v0``
(:class:`yume_env.envs.procedural_env.YumeProceduralEnv`).
"""

from yume_env.procedural.camera import EYE_HEIGHT, move_block
from yume_env.procedural.events import CATALOG, CHANNELS, Event, match_event
from yume_env.procedural.renderer import Renderer
from yume_env.procedural.scene import Scene
from yume_env.procedural.spec import ProceduralSpec
from yume_env.procedural.timing import RenderTiming
from yume_env.procedural.world import ProceduralWorld
from yume_env.procedural.worlds import ProceduralWorlds

__all__ = [
    "CATALOG",
    "CHANNELS",
    "EYE_HEIGHT",
    "Event",
    "ProceduralSpec",
    "ProceduralWorld",
    "ProceduralWorlds",
    "Renderer",
    "RenderTiming",
    "Scene",
    "match_event",
    "move_block",
]
