"""Captions are byte-exact copies of the official Yume-1.5 caption style."""

from __future__ import annotations

import pytest

from yume_env.actions import LOOKS, MOVES
from yume_env.world.captions import SpeedFields, default_speed, render_caption

# Lines 1 and 7 of the official caption_re.txt (W + still, W + pan right), byte for byte.
OFFICIAL_W_STILL = (
    "First-person perspective. The camera pushes forward (W). The rotation direction of the camera remains "
    "stationary (\u00b7). Actual distance moved:4 at 100 meters per second. Angular change rate (turn speed):0. "
    "View rotation speed:0."
)
OFFICIAL_W_RIGHT = (
    "First-person perspective. The camera pushes forward (W). The camera pans to the right (\u2192). "
    "Actual distance moved:0 at 100 meters per second. Angular change rate (turn speed):4. View rotation speed:4."
)


def test_matches_the_official_caption_file_lines():
    assert render_caption(MOVES.index("W"), LOOKS.index("\u00b7")) == OFFICIAL_W_STILL
    assert render_caption(MOVES.index("W"), LOOKS.index("\u2192")) == OFFICIAL_W_RIGHT
    assert render_caption(1, 0).encode("utf-8").count(b"\xc2\xb7") == 1  # U+00B7, not a period


def test_event_is_appended_without_separator_as_officially():
    assert render_caption(1, 1, "A dragon appears.") == OFFICIAL_W_RIGHT + "A dragon appears."


def test_speed_fields_are_optional_and_configurable():
    no_speed = render_caption(4, 8, speed=None)
    assert no_speed == (
        "First-person perspective. The camera moves to the right (D). "
        "The camera tilts down and pans to the left (\u2193\u2190)."
    )
    custom = render_caption(0, 0, speed=SpeedFields(0.5, 1.25, 2))
    assert custom.endswith(
        "Actual distance moved:0.5 at 100 meters per second. Angular change rate (turn speed):1.25. View rotation speed:2."
    )
    assert default_speed(0, 0) == SpeedFields(0, 0, 0)
    assert default_speed(5, 0) == SpeedFields(4, 0, 0)
    assert default_speed(5, 3) == SpeedFields(0, 4, 4)


def test_every_combination_renders_and_bad_indices_are_named():
    captions = {render_caption(m, look) for m in range(9) for look in range(9)}
    assert len(captions) == 81
    with pytest.raises(ValueError, match="move: got 9"):
        render_caption(9, 0)
    with pytest.raises(ValueError, match="speed.distance: got -1"):
        SpeedFields(-1, 0, 0)
