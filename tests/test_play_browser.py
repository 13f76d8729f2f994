"""``yume-world play`` in a real browser: headless Chromium (Debian's) driven by Playwright.

Presses keys, types an event, forks and rewinds, records, and sends bad input; checks the camera
moves the way the keys say (the procedural world's exact poses), the captions match the keys, the
canvas shows the world's frames bit for bit, and a rewind restores them exactly.
Set ``YUME_PLAY_SCREENSHOT=path.png`` to save a screenshot of the page (docs/play.png).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("YUME_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason=f"needs Chromium at {CHROMIUM} (apt-get install -y chromium)"
    ),
]
pytest.importorskip("playwright", reason="needs Playwright for Python (pip install playwright)")
pytest.importorskip("aiohttp", reason="needs the 'play' extra (pip install 'yume-env[play]')")

from playwright.sync_api import sync_playwright  # noqa: E402

from yume_env.envs.procedural_env import YumeProceduralEnv  # noqa: E402
from yume_env.play.keys import action_of_keys  # noqa: E402
from yume_env.play.server import PlayServer, serve_in_thread  # noqa: E402
from yume_env.play.session import WorldConfig  # noqa: E402
from yume_env.script import parse_script  # noqa: E402
from yume_env.world.captions import render_caption  # noqa: E402

RES = (96, 160)
IDLE = (
    "() => yumePlay.ready && !yumePlay.busy && yumePlay.queued === 0 && yumePlay.drawn === yumePlay.received"
)


@pytest.fixture
def page(tmp_path):
    server = PlayServer(WorldConfig(world="procedural", resolution=RES), tmp_path / "out")
    url, stop = serve_in_thread(server)
    assert url.startswith("http://127.0.0.1:")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 700})
            pg = context.new_page()
            pg.set_default_timeout(20_000)
            pg.goto(url + "?speed=16")
            pg.wait_for_function("() => yumePlay.blocks >= 1")
            pg.wait_for_function(IDLE)
            yield pg
        finally:
            browser.close()
            stop()


def _hold(page, keys, blocks=1):
    """Hold ``keys`` until ``blocks`` more blocks have arrived, then let go and wait until idle."""
    start = page.evaluate("yumePlay.blocks")
    for k in keys:
        page.keyboard.down(k)
    page.wait_for_function(f"() => yumePlay.blocks >= {start + blocks}")
    for k in reversed(keys):
        page.keyboard.up(k)
    page.wait_for_function(IDLE)


def _canvas(page) -> np.ndarray:
    h, w = RES
    return np.asarray(page.evaluate("yumePlay.pixels()"), np.uint8).reshape(h, w, 4)[..., :3]


def test_play_in_the_browser(page, tmp_path):
    # look right: the camera pans right (yaw grows 40 degrees per block), captions follow the keys
    _hold(page, ["ArrowRight"])
    _hold(page, ["w", "d"])
    _hold(page, ["s", "ArrowUp"])
    page.click("#event")
    page.keyboard.type("It starts to rain.")
    page.keyboard.press("Enter")
    page.wait_for_function("() => yumePlay.caption.endsWith('It starts to rain.')")
    page.wait_for_function(IDLE)

    history = page.evaluate("yumePlay.history")
    assert history[0]["cause"] == "reset"
    steps = history[1:]
    assert len(steps) >= 4
    kinds = set()
    for prev, block in zip(history, steps):
        move, look = action_of_keys(block["keys"])
        event = "It starts to rain." if block is steps[-1] else ""
        assert block["caption"] == render_caption(move, look, event), block
        kinds.add(tuple(sorted(block["keys"])))
        dyaw = (block["pose"]["yaw"] - prev["pose"]["yaw"] + 180) % 360 - 180
        dpos = np.subtract(block["pose"]["position"], prev["pose"]["position"])
        if "ArrowRight" in block["keys"]:
            assert dyaw == pytest.approx(40.0, abs=1e-3)
        else:
            assert dyaw == pytest.approx(0.0, abs=1e-3)
        if "ArrowUp" in block["keys"]:
            assert block["pose"]["pitch"] > prev["pose"]["pitch"]
        moved = float(np.hypot(dpos[0], dpos[2]))
        assert (moved > 0.5) == bool(set(block["keys"]) & {"w", "s", "d"}), block
    assert {("ArrowRight",), ("d", "w"), ("ArrowUp", "s"), ()} <= kinds

    # the canvas shows the world's own frame, bit for bit: replay the same actions in Python
    env = YumeProceduralEnv(resolution=RES)
    env.reset(seed=0)
    for block in steps:
        move, look = action_of_keys(block["keys"])
        obs, *_ = env.step(
            {"move": move, "look": look, "event": "It starts to rain." if block is steps[-1] else ""}
        )
    shown = _canvas(page)
    np.testing.assert_array_equal(shown, obs[-1])

    # fork, walk on, rewind: the frame on screen is the forked one again, exactly
    page.click("#fork")
    page.wait_for_function("() => yumePlay.snapshots.length === 1")
    _hold(page, ["a", "ArrowLeft"])
    assert not np.array_equal(_canvas(page), shown)
    page.click("button[data-snapshot='1']")
    page.wait_for_function("() => yumePlay.rewinds === 1")
    page.wait_for_function(IDLE)
    np.testing.assert_array_equal(_canvas(page), shown)

    # record a block: an mp4 and a replayable action script
    page.click("#record")
    page.wait_for_function("() => yumePlay.recording")
    page.click("#step")
    page.wait_for_function(IDLE)
    page.click("#record")
    page.wait_for_function("() => yumePlay.saved !== null")
    saved = page.evaluate("yumePlay.saved")
    assert Path(saved["video"]).stat().st_size > 0
    script = parse_script(Path(saved["script"]).read_text())
    assert len(script) == len(steps) + 1 and script[-1].describe() == "None still"
    assert "saved" in page.inner_text("#saved")

    # bad input: a clear message on the page, the world unchanged
    before = page.evaluate("yumePlay.blockIndex")
    page.evaluate("yumePlay.sendRaw('{not json')")
    page.wait_for_function("() => (yumePlay.lastError || '').includes('not valid JSON')")
    assert page.is_visible("#error") and "not valid JSON" in page.inner_text("#error")
    page.evaluate("yumePlay.sendRaw(JSON.stringify({type: 'step', keys: ['Escape']}))")
    page.wait_for_function("() => yumePlay.lastError.includes(\"unknown key 'Escape'\")")
    page.evaluate("yumePlay.sendRaw(JSON.stringify({type: 'step', keys: [], event: 'x'.repeat(100000)}))")
    page.wait_for_function("() => yumePlay.lastError.includes('at most 300')")
    assert page.evaluate("yumePlay.blockIndex") == before

    # a second tab on the same world is told it is taken
    world = page.evaluate("yumePlay.world")
    other = page.context.new_page()
    other.goto(page.url.split("?")[0])
    other.evaluate(f"sessionStorage.setItem('yume-world', '{world}')")
    other.reload()
    other.wait_for_function("() => (yumePlay.lastError || '').includes('already open in another tab')")
    assert other.is_visible("#error")
    other.close()
    page.click("#step")
    page.wait_for_function(f"() => yumePlay.blockIndex === {before + 1}")

    shot = os.environ.get("YUME_PLAY_SCREENSHOT")
    if shot:
        page.wait_for_function(IDLE)
        page.screenshot(path=shot)
