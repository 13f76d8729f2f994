"""Camera pose and motion of the procedural world.

A pose is ``(x, y, z, yaw, pitch)``: position in metres (``y`` up, the eye at :data:`EYE_HEIGHT`),
``yaw`` in degrees clockwise from north (+z) towards east (+x), so panning right increases it, and
``pitch`` in degrees, positive looking up. The camera frame is ``right``, ``up``, ``forward``; a
pixel at normalised image coordinates ``(u, v)`` looks along ``u * right + v * up + forward``.

One action moves the camera over a block of ``T`` frames: frame ``k`` (1..T) of the block has gone
``k / T`` of the way, at constant speed, so motion is continuous from block to block. Movement is
horizontal (pitch never lifts the camera), relative to the heading of each frame, so walking while
panning follows an arc. Diagonal keys move at the same speed as single keys. Pitch is clamped to
``[-pitch_limit, +pitch_limit]``. The body is a vertical cylinder of radius :data:`BODY_RADIUS`;
a step that would enter an obstacle slides along it (keeps the free axis) or stops.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from yume_env.actions import LOOK_VECTORS, MOVE_VECTORS

#: Eye height above the ground (metres).
EYE_HEIGHT = 1.7
#: Radius of the camera's body for collisions (metres).
BODY_RADIUS = 0.3
#: Longest sub-step of the collision check (metres), so thin obstacles are never skipped.
_SUBSTEP = 0.2


def heading(yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal ``forward`` and ``right`` unit vectors ``(x, z)`` of a yaw in degrees."""
    a = np.radians(yaw_deg)
    return np.array([np.sin(a), np.cos(a)]), np.array([np.cos(a), -np.sin(a)])


def move_block(
    pose: np.ndarray,
    move: int,
    look: int,
    frames: int,
    move_speed: float,
    turn_speed: float,
    tilt_speed: float,
    pitch_limit: float,
    blocked: Callable[[float, float], bool] | None = None,
) -> tuple[np.ndarray, bool]:
    """Per-frame poses ``(frames, 5)`` of one block, and whether a collision stopped the motion.

    ``pose`` is the pose of the previous frame; ``move``/``look`` are action indices into
    :data:`yume_env.actions.MOVE_VECTORS` / :data:`~yume_env.actions.LOOK_VECTORS`;
    ``move_speed`` is metres per block, ``turn_speed`` / ``tilt_speed`` degrees per block;
    ``blocked(x, z)`` says whether the body centre may not stand at ``(x, z)``.
    """
    fwd, rgt = MOVE_VECTORS[move]
    yaw_r, pitch_u = LOOK_VECTORS[look]
    norm = float(np.hypot(fwd, rgt)) or 1.0
    step = move_speed / frames / norm
    x, y, z, yaw, pitch = (float(v) for v in pose)
    out = np.empty((frames, 5), np.float64)
    hit = False
    for k in range(frames):
        yaw = (yaw + yaw_r * turn_speed / frames) % 360.0
        pitch = float(np.clip(pitch + pitch_u * tilt_speed / frames, -pitch_limit, pitch_limit))
        if fwd or rgt:
            f, r = heading(yaw)
            dx, dz = (fwd * f + rgt * r) * step
            n_sub = max(1, int(np.ceil(np.hypot(dx, dz) / _SUBSTEP)))
            for _ in range(n_sub):
                nx, nz = x + dx / n_sub, z + dz / n_sub
                if blocked is None or not blocked(nx, nz):
                    x, z = nx, nz
                elif not blocked(nx, z):
                    x, hit = nx, True
                elif not blocked(x, nz):
                    z, hit = nz, True
                else:
                    hit = True
        out[k] = (x, y, z, yaw, pitch)
    return out, hit


def box_blocker(footprints: np.ndarray) -> Callable[[float, float], bool]:
    """``blocked(x, z)`` for footprints ``(n, 4)`` = ``[x0, x1, z0, z1]`` already grown by the body."""
    fp = np.asarray(footprints, np.float64).reshape(-1, 4)

    def blocked(x: float, z: float) -> bool:
        return bool(np.any((fp[:, 0] < x) & (x < fp[:, 1]) & (fp[:, 2] < z) & (z < fp[:, 3])))

    return blocked
