"""``yume-world play`` at the protocol level: the aiohttp app driven by aiohttp's test client."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest

pytest.importorskip("aiohttp", reason="needs the 'play' extra (pip install 'yume-env[play]')")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from PIL import Image  # noqa: E402

from yume_env.actions import LOOKS, MOVES  # noqa: E402
from yume_env.envs.procedural_env import YumeProceduralEnv  # noqa: E402
from yume_env.play.keys import KeysError, action_of_keys  # noqa: E402
from yume_env.play.protocol import ProtocolError, Rewind, Step, parse_message  # noqa: E402
from yume_env.play.server import PlayServer  # noqa: E402
from yume_env.play.session import WorldConfig  # noqa: E402
from yume_env.script import parse_script  # noqa: E402
from yume_env.world.captions import render_caption  # noqa: E402

RES = (32, 48)


def test_keys_make_actions():
    assert action_of_keys([]) == (0, 0)
    assert action_of_keys(["W", "d", "ArrowUp", "ArrowRight"]) == (MOVES.index("W+D"), LOOKS.index("↑→"))
    assert action_of_keys(["s", "a", "ArrowLeft"]) == (MOVES.index("S+A"), LOOKS.index("←"))
    with pytest.raises(KeysError, match="unknown key 'q'"):
        action_of_keys(["q"])
    with pytest.raises(KeysError, match="W and S together"):
        action_of_keys(["w", "s"])
    with pytest.raises(KeysError, match="at most 8"):
        action_of_keys(["w"] * 9)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "got a JSON list"),
        ('{"type": "jump"}', 'type: got "jump"; accepted: reset, step'),
        ('{"type": "step", "keys": ["x"]}', "unknown key 'x'"),
        ('{"type": "step", "keys": "w"}', "accepted: a list of key names"),
        ('{"type": "step", "keys": [], "event": "' + "a" * 301 + '"}', "at most 300"),
        ('{"type": "step", "keys": [], "event": "caf\\u00e9"}', "printable ASCII"),
        ('{"type": "step", "keys": [], "speed": 3}', "unknown fields 'speed'"),
        ('{"type": "rewind", "snapshot": "1"}', 'snapshot: got "1"'),
        ('{"type": "reset", "seed": -1}', "seed: got -1"),
        ('{"type": "reset", "image": "data:image/png;base64,@@@"}', "not valid base64"),
        ('{"type": "record", "on": 1}', "true or false"),
        ("[" * 100000, "not valid JSON"),
    ],
)
def test_protocol_refuses_bad_messages(text, match):
    with pytest.raises(ProtocolError, match=match):
        parse_message(text)


def test_protocol_parses_good_messages():
    msg = parse_message('{"type": "step", "keys": ["w", "ArrowLeft"], "event": "It starts to rain."}')
    assert msg == Step(MOVES.index("W"), LOOKS.index("←"), "It starts to rain.", ("w", "ArrowLeft"))
    assert parse_message('{"type": "rewind", "snapshot": 2}') == Rewind(2)


class Tab:
    """One page's socket: JSON messages and the PNG frames after each block."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, obj) -> dict:
        await (self.ws.send_str(obj) if isinstance(obj, str) else self.ws.send_json(obj))
        return await self.reply()

    async def reply(self) -> dict:
        msg = await asyncio.wait_for(self.ws.receive_json(), 60)
        if msg["type"] == "block":
            msg["pixels"] = [
                np.asarray(Image.open(io.BytesIO(await asyncio.wait_for(self.ws.receive_bytes(), 60))))
                for _ in range(msg["frames"])
            ]
        return msg


def _run(config: WorldConfig, tmp_path, body, dataset_id=None):
    async def main():
        server = PlayServer(config, tmp_path / "out", dataset_id)
        async with TestClient(TestServer(server.build_app())) as client:
            await body(client, server)
        return server

    return asyncio.run(main())


async def _open(client, world=None) -> tuple[Tab, dict]:
    ws = await client.ws_connect("/ws" + (f"?world={world}" if world else ""))
    tab = Tab(ws)
    return tab, await tab.reply()


def test_procedural_play_session_over_the_socket(tmp_path):
    config = WorldConfig(world="procedural", resolution=RES)

    async def body(client, server):
        page = await client.get("/")
        assert page.status == 200 and "yume-world play" in await page.text()
        assert (await client.get("/static/play.js")).status == 200
        tab, hello = await _open(client)
        assert hello["type"] == "hello" and hello["resolution"] == list(RES) and hello["fps"] == 16
        start = await tab.send({"type": "reset", "seed": 7})
        assert start["type"] == "block" and start["frames"] == 1 and start["block_index"] == 0

        # the frames are the procedural world's own, bit for bit, and the pose moves as the keys say
        ref = YumeProceduralEnv(resolution=RES)
        ref_obs, _ = ref.reset(seed=7)
        np.testing.assert_array_equal(start["pixels"][0], ref_obs[0])
        right = await tab.send({"type": "step", "keys": ["ArrowRight"]})
        ref_obs, *_, ref_info = ref.step({"move": 0, "look": 1, "event": ""})
        assert len(right["pixels"]) == 29
        np.testing.assert_array_equal(np.stack(right["pixels"]), ref_obs)
        assert right["pose"]["yaw"] == pytest.approx(start["pose"]["yaw"] + 40.0, abs=1e-3)
        assert right["caption"] == render_caption(0, 1, "")
        assert right["timing"]["step_ms"] > 0 and "render_ms" in right["timing"]

        fork = await tab.send({"type": "fork"})
        assert fork == {"type": "forked", "snapshot": 1, "block_index": 1}
        rec = await tab.send({"type": "record", "on": True})
        assert rec == {"type": "recording", "on": True}
        walk = await tab.send({"type": "step", "keys": ["w", "d"], "event": "It starts to rain."})
        assert walk["caption"] == render_caption(MOVES.index("W+D"), 0, "It starts to rain.")
        assert walk["pose"]["position"] != right["pose"]["position"]

        # bad input: a clear error, and the world is unchanged (the next step equals a fresh one)
        for bad, match in [
            ("nonsense", "not valid JSON"),
            ({"type": "step", "keys": ["q"]}, "unknown key"),
            ({"type": "step", "keys": [], "event": "x" * 5000}, "at most 300"),
            ({"type": "rewind", "snapshot": 9}, "snapshot: got 9; accepted: 1"),
            (
                {"type": "reset", "seed": 1, "image": "data:image/png;base64,AAAA"},
                "procedural world starts from its seed",
            ),
        ]:
            err = await tab.send(bad)
            assert err["type"] == "error" and match in err["message"], err
        await tab.ws.send_bytes(b"\x00\x01")
        assert "binary" in (await tab.reply())["message"]

        back = await tab.send({"type": "rewind", "snapshot": 1})
        assert back["frames"] == 1 and back["block_index"] == 1 and back["pose"] == right["pose"]
        np.testing.assert_array_equal(back["pixels"][0], right["pixels"][-1])
        again = await tab.send({"type": "step", "keys": ["w", "d"], "event": "It starts to rain."})
        np.testing.assert_array_equal(np.stack(again["pixels"]), np.stack(walk["pixels"]))

        saved = await tab.send({"type": "record", "on": False})
        assert saved["type"] == "recording" and saved["on"] is False
        steps = parse_script(open(saved["script"]).read())
        assert [s.describe() for s in steps] == ["None right", "W+D still It starts to rain."]
        import imageio.v3 as iio

        video = iio.imread(saved["video"], plugin="pyav")
        assert video.shape[0] == 1 + 29  # the frame at the start of the recording, then the block

        # a second tab cannot take this world; the world goes on in the first tab
        other, refused = await _open(client, hello["world"])
        assert refused["type"] == "error" and "already open in another tab" in refused["message"]
        step3 = await tab.send({"type": "step", "keys": []})
        assert step3["block_index"] == 3
        await tab.ws.close()
        # once the first tab has gone, a reload gets the same world back, where it was
        tab2, hello2 = await _open(client, hello["world"])
        assert hello2["world"] == hello["world"] and hello2["started"] and not hello["started"]
        where = await tab2.reply()
        assert where["block_index"] == 3
        assert len(server.worlds) == 1
        # a message over the size limit: the socket is closed, the world kept; reconnecting gets it back
        try:
            await tab2.ws.send_str("x" * (17 * 2**20))
            closing = await asyncio.wait_for(tab2.ws.receive(), 60)
            assert closing.type.name in ("CLOSE", "CLOSED", "CLOSING", "ERROR")
        except ConnectionError:  # the server closed the socket while the message was still going out
            pass
        await tab2.ws.close()
        tab2, _ = await _open(client, hello["world"])
        assert (await tab2.reply())["block_index"] == 3
        # an id the server does not hold (it was restarted): a new world
        tab3, hello3 = await _open(client, "deadbeef")
        assert hello3["type"] == "hello" and hello3["world"] != "deadbeef" and len(server.worlds) == 2

    _run(config, tmp_path, body)


def _data_url(image: np.ndarray) -> str:
    import base64

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_tabs_share_one_model_and_recordings_replay_with_yume_world_record(tmp_path, capsys):
    """Two tabs, two worlds, one model; an uploaded start image; the recorded script replays."""
    config = WorldConfig(world="tiny", resolution=(32, 64), steps=1)
    image = np.random.default_rng(0).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    got = {}

    async def body(client, server):
        a, ha = await _open(client)
        b, hb = await _open(client)
        assert ha["world"] != hb["world"] and ha["accepts_image"]
        start = await a.send({"type": "reset", "seed": 1, "image": _data_url(image)})
        assert start["frames"] == 1 and np.abs(start["pixels"][0].astype(int) - image).max() <= 1
        await b.send({"type": "reset", "seed": 2})
        bad = await a.send({"type": "reset", "seed": 1, "image": "data:image/png;base64,AAAA"})
        assert "not an image PIL can read" in bad["message"]
        await a.send({"type": "record", "on": True})
        sa = await a.send({"type": "step", "keys": ["w"], "event": "Fog rolls in."})
        sb = await b.send({"type": "step", "keys": ["w"]})
        assert sa["frames"] == sb["frames"] == 29
        assert not np.array_equal(sa["pixels"][-1], sb["pixels"][-1])
        assert len({id(s.env.unwrapped.model) for s in server.worlds.values()}) == 1
        got["saved"] = await a.send({"type": "record", "on": False})
        got["frames"] = np.stack(sa["pixels"])

    _run(config, tmp_path, body)
    script = open(got["saved"]["script"]).read()
    replay = next(line for line in script.splitlines() if line.startswith("# replay: "))
    assert "--seed 1" in replay and "--resolution 32x64" in replay and "--steps 1" in replay
    start_png = replay.split("--image ")[1].split()[0]
    np.testing.assert_array_equal(np.asarray(Image.open(start_png)), image)

    # the same frames from the env built as 'yume-world record' builds it
    from yume_env.envs.yume_world import YumeWorldEnv

    env = YumeWorldEnv(image=start_png, resolution=(32, 64), steps=1)
    env.reset(seed=1)
    (step,) = parse_script(script)
    obs, *_ = env.step(step.as_action())
    np.testing.assert_array_equal(obs, got["frames"])

    # and 'yume-world record' itself runs the script
    from yume_env.cli import main as cli_main

    out = tmp_path / "replayed"
    argv = ["record", "--image", start_png, "--seed", "1", "--script", got["saved"]["script"]]
    assert cli_main([*argv, "--resolution", "32x64", "--steps", "1", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out


def test_play_writes_a_minari_dataset_of_the_kept_branch(tmp_path, monkeypatch):
    pytest.importorskip("minari")
    pytest.importorskip("h5py")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    config = WorldConfig(world="procedural", resolution=RES)

    async def body(client, server):
        tab, _ = await _open(client)
        await tab.send({"type": "reset", "seed": 3})
        await tab.send({"type": "step", "keys": ["w"]})
        await tab.send({"type": "fork"})
        await tab.send({"type": "step", "keys": ["ArrowLeft"]})  # undone by the rewind
        await tab.send({"type": "rewind", "snapshot": 1})
        await tab.send({"type": "step", "keys": ["d"], "event": "Fog rolls in."})
        await tab.send({"type": "reset", "seed": 4})
        await tab.send({"type": "step", "keys": ["s"]})

    _run(config, tmp_path, body, dataset_id="yume/play-test-v0")
    import minari

    from yume_env.datasets import replay_episode

    ds = minari.load_dataset("yume/play-test-v0")
    assert ds.total_episodes == 2
    first = ds[0]
    assert list(first.actions["move"]) == [MOVES.index("W"), MOVES.index("D")]
    assert list(first.actions["event"]) == ["", "Fog rolls in."]
    np.testing.assert_array_equal(np.stack(replay_episode(ds, 0)), first.observations)
    np.testing.assert_array_equal(np.stack(replay_episode(ds, 1)), ds[1].observations)


def test_play_cli_usage_errors(capsys):
    from yume_env.play.cli import main

    assert main(["--world", "moon"]) == 2
    assert "world: got 'moon'" in capsys.readouterr().err
    assert main(["--world", "yume"]) == 2
    assert "needs the official Yume-5B-720P" in capsys.readouterr().err
    assert main(["--world", "procedural", "--steps", "2"]) == 2
    assert main(["--port", "0"]) == 2
    assert main(["--help"]) == 0
    assert "127.0.0.1" in capsys.readouterr().out


def test_recorded_scripts_hold_every_event_even_spaces_and_a_trailing_repeat(tmp_path):
    from yume_env.play.session import PlaySession

    session = PlaySession("w1", WorldConfig(world="procedural", resolution=RES), tmp_path)
    session.reset(3, None)
    session.record(True)
    session.step(0, 0, "It starts to rain.")
    session.step(0, 0, "   ")  # clears the event
    session.step(1, 0, "Cars pass x2")  # plain text would read as a repeat count
    session.step(1, 1, "")
    saved = session.record(False)
    text = open(saved["script"]).read()
    assert 'None still "   "' in text and 'W still "Cars pass x2"' in text and "cannot be written" not in text
    steps = parse_script(text)  # read back: the same four blocks, event for event
    assert [s.event for s in steps] == ["It starts to rain.", "   ", "Cars pass x2", ""]
    assert [s.action for s in steps] == [s.action for s in session.log]
    with pytest.raises(Exception, match="not recording"):
        session.record(False)
    session.close()


def test_world_config_takes_a_setting_only_if_the_worlds_spec_does(tmp_path):
    from yume_env.play.cli import main as play_main

    # the procedural world has no model: every model setting is refused by name, now and not in a tab
    for name, value in [("checkpoint", "ckpt"), ("device", "cpu"), ("steps", 2), ("decode", "stream")]:
        with pytest.raises(ValueError, match=rf"^{name}: not used by world 'procedural'"):
            WorldConfig(world="procedural", **{name: value})
    assert WorldConfig(world="procedural", resolution=[32, 48]).env_kwargs() == {"resolution": RES}
    assert WorldConfig(world="tiny", steps=1, decode="stream").env_kwargs() == {
        "model": "tiny",
        "steps": 1,
        "decode": "stream",
    }
    with pytest.raises(ValueError, match=r"^world: got 'moon'; accepted: tiny, procedural, yume"):
        WorldConfig(world="moon")
    # the command line names the flag, exits 2, and builds no world
    assert play_main(["--world", "procedural", "--decode", "stream", "--out", str(tmp_path)]) == 2
    env = WorldConfig(world="procedural", resolution=RES).make_env()
    assert env.unwrapped is env and env.worlds.resolution == RES
    env.close()


def test_a_procedural_recording_replays_with_yume_world_record(tmp_path, capsys):
    import shlex

    from yume_env.cli import main as cli_main
    from yume_env.play.session import PlaySession

    session = PlaySession("w1", WorldConfig(world="procedural", resolution=RES), tmp_path)
    session.reset(5, None)
    session.record(True)
    blocks = [session.step(1, 2, "It starts to rain."), session.step(0, 1, "")]
    saved = session.record(False)
    session.close()
    script = saved["script"]
    replay = next(line for line in open(script).read().splitlines() if line.startswith("# replay: "))
    assert "--model procedural" in replay and "--seed 5" in replay and "--image" not in replay
    # the replay line is a command that runs as written (THIS_FILE is the script itself)
    argv = shlex.split(replay.removeprefix("# replay: yume-world ").replace("THIS_FILE", str(script)))
    assert cli_main([*argv, "--out", str(tmp_path / "replayed")]) == 0
    assert "per block: render" in capsys.readouterr().out
    # and it is the same world: the env it builds gives the played frames, bit for bit
    env = YumeProceduralEnv(resolution=RES)
    env.reset(seed=5)
    for step, block in zip(parse_script(open(script).read()), blocks):
        obs, *_ = env.step(step.as_action())
        assert len(block.frames) == len(obs) == 29
        np.testing.assert_array_equal(obs, np.stack(block.frames))


def test_record_in_the_procedural_world_refuses_what_it_does_not_take(tmp_path, capsys):
    from yume_env.cli import main as cli_main

    script = tmp_path / "tour.txt"
    script.write_text("W right\n")
    base = ["record", "--model", "procedural", "--script", str(script), "--out", str(tmp_path / "out")]
    for extra, message in [
        (["--image", "street"], "--image: the procedural world starts from its seed; leave it out"),
        (["--steps", "2"], "--steps: not used by world 'procedural' (it has no model); leave it out"),
        (["--decode", "stream"], "--decode: not used by world 'procedural' (it has no model); leave it out"),
    ]:
        assert cli_main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "tour.mp4").exists()
    # a generated world still needs a start
    assert cli_main(["record", "--script", str(script)]) == 2
    assert "give --image, --prompt, or both" in capsys.readouterr().err
