"""How long a procedural reset or step took: :class:`RenderTiming`, and the deprecated
:class:`Milliseconds` of ``info["render_ms"]``.

Timings measure the machine, not the world, so they take no part in comparisons: any two timings
of one type compare equal and hash alike (``a == b`` implies ``hash(a) == hash(b)``), the infos of
two identical worlds are equal even when one ran slower, and a timing never equals a plain number.
This is the same rule as :class:`yume_env.world.stream.BlockTiming` for the generated world.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

__all__ = ["Milliseconds", "RenderTiming"]


@dataclass(frozen=True)
class RenderTiming:
    """Wall-clock milliseconds of one procedural reset or step (``info["timing"]``)."""

    render_ms: float = field(default=0.0, compare=False)

    @property
    def total_ms(self) -> float:
        return self.render_ms

    def as_dict(self) -> dict[str, float]:
        return {"render_ms": self.render_ms}


@dataclass(frozen=True)
class Milliseconds(RenderTiming):
    """``info["render_ms"]``, deprecated: read ``info["timing"].render_ms`` (a plain float).

    ``float(ms)`` and formatting (``f"{ms:.1f}"``) give the milliseconds as before; arithmetic and
    ordering still work on that number but warn (``DeprecationWarning``). Unlike the float it used
    to be, it equals only another ``Milliseconds``, so it keeps Python's hash contract.
    """

    def __float__(self) -> float:
        return float(self.render_ms)

    def __format__(self, spec: str) -> str:
        return format(float(self.render_ms), spec)


def _deprecated_float_operation(name: str):
    operation = getattr(float, name)

    def method(self, other):
        warnings.warn(
            f"info['render_ms'] {name.strip('_')}: using it as a number is deprecated; "
            "read info['timing'].render_ms (a float)",
            DeprecationWarning,
            stacklevel=2,
        )
        return operation(float(self.render_ms), other)

    method.__name__ = name
    return method


for _name in (
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__truediv__",
    "__rtruediv__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
):
    setattr(Milliseconds, _name, _deprecated_float_operation(_name))
del _name
