"""The ``yume-world play`` server: an aiohttp app serving the page and one WebSocket per tab.

- ``GET /`` the page (``static/index.html``, plain HTML + JS shipped with the package).
- ``GET /ws?world=ID`` the tab's socket. Without ``world`` (or with an id this server does not
  hold, e.g. after a restart) a new world is made and its id sent in ``hello``; the page keeps it
  (``sessionStorage``) so a reload gets the same world back. A world is played by one socket at a
  time: a second tab asking for a world in use is told so and closed, and the world is not touched.

One model serves every tab: worlds are built through the shared model cache
(:mod:`yume_env.world.model_cache`), so the model is loaded once, and every reset, step, fork and
rewind runs on ONE worker thread, one request at a time (tabs take turns, block by block; their
steps are not batched into one forward). The event loop only moves messages, so a slow block never
blocks another tab's page.

Bad messages (malformed JSON, unknown types, fields or keys, events that are too long or not
printable ASCII, unknown snapshots, images that do not decode) get an ``error`` message naming what
was wrong and what is accepted; the world is left as it was. Nothing a client sends stops the
server.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from yume_env.play.protocol import (
    MAX_MESSAGE_BYTES,
    Fork,
    ProtocolError,
    Record,
    Reset,
    Rewind,
    Step,
    parse_message,
)
from yume_env.play.session import PlayError, PlaySession, WorldConfig, png_bytes

STATIC = Path(__file__).resolve().parent / "static"
MAX_WORLDS = 32


def require_aiohttp():
    try:
        from aiohttp import web
    except ImportError:
        raise ImportError("yume-world play needs the 'play' extra: pip install \"yume-env[play]\"") from None
    return web


@dataclass
class PlayServer:
    """The state behind the app: worlds by id, which socket holds each, the model thread."""

    config: WorldConfig
    out_dir: Path
    dataset_id: str | None = None
    worlds: dict[str, PlaySession] = field(default_factory=dict)
    owners: dict[str, object] = field(default_factory=dict)
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "yume-play-model"))

    async def run(self, fn, *args):
        """Run ``fn`` on the model thread (one at a time for all tabs)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def build_app(self):
        web = require_aiohttp()
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
        app.router.add_get("/", self.index)
        app.router.add_get("/ws", self.socket)
        app.router.add_static("/static/", STATIC, show_index=False)
        app.on_shutdown.append(self._close_sockets)
        app.on_cleanup.append(self._cleanup)
        return app

    async def index(self, request):
        web = require_aiohttp()
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------------------- socket
    async def socket(self, request):
        web = require_aiohttp()
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=30)
        await ws.prepare(request)
        world_id = request.query.get("world") or None
        try:
            session = await self._claim(ws, world_id)
        except PlayError as exc:
            await ws.send_json({"type": "error", "fatal": True, "message": str(exc)})
            await ws.close()
            return ws
        try:
            await ws.send_json(self._hello(session))
            if session.seed is not None and session._current is not None:  # a reload: show where we are
                snap = session._current
                await ws.send_json(
                    {
                        "type": "block",
                        "frames": 1,
                        "caption": snap.caption,
                        "event": snap.event,
                        "block_index": snap.block_index,
                        "timing": {},
                        "pose": snap.pose,
                        "seed": session.seed,
                    }
                )
                await ws.send_bytes(await self.run(png_bytes, snap.frame))
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    await self._handle(ws, session, msg.data)
                elif msg.type == web.WSMsgType.BINARY:
                    await ws.send_json(
                        {"type": "error", "message": "message: got binary data; accepted: JSON text"}
                    )
                elif msg.type == web.WSMsgType.ERROR:
                    break
        finally:
            if self.owners.get(session.world_id) is ws:
                del self.owners[session.world_id]
        return ws

    async def _claim(self, ws, world_id: str | None) -> PlaySession:
        if (
            world_id is not None and world_id in self.worlds
        ):  # an unknown id (a restarted server): a new world
            if world_id in self.owners:
                raise PlayError(
                    f"world {world_id} is already open in another tab; play it there, or open a new world here"
                )
            self.owners[world_id] = ws
            return self.worlds[world_id]
        if len(self.worlds) >= MAX_WORLDS:
            raise PlayError(f"worlds: this server already holds {MAX_WORLDS}; accepted: at most {MAX_WORLDS}")
        world_id = secrets.token_hex(4)
        session = await self.run(
            PlaySession, world_id, self.config, self.out_dir, self.dataset_id is not None
        )
        self.worlds[world_id] = session
        self.owners[world_id] = ws
        return session

    def _hello(self, session: PlaySession) -> dict:
        from yume_env.play.keys import ACCEPTED_KEYS

        h, w = session.resolution
        return {
            "type": "hello",
            "world": session.world_id,
            "kind": self.config.world,
            "fps": session.fps,
            "resolution": [h, w],
            "keys": list(ACCEPTED_KEYS),
            "accepts_image": self.config.world != "procedural",
            "started": session.seed is not None,
            "dataset": self.dataset_id,
            "out": str(self.out_dir),
        }

    async def _handle(self, ws, session: PlaySession, text: str) -> None:
        try:
            msg = parse_message(text)
            if isinstance(msg, Reset):
                block = await self.run(session.reset, msg.seed, msg.image)
                await self._send_block(ws, block, "reset")
            elif isinstance(msg, Step):
                block = await self.run(session.step, msg.move, msg.look, msg.event)
                await self._send_block(ws, block, "step")
            elif isinstance(msg, Fork):
                snap = await self.run(session.fork)
                await ws.send_json(
                    {"type": "forked", "snapshot": snap, "block_index": session.snapshots[snap].block_index}
                )
            elif isinstance(msg, Rewind):
                block = await self.run(session.rewind, msg.snapshot)
                await self._send_block(ws, block, "rewind")
            elif isinstance(msg, Record):
                result = await self.run(session.record, msg.on)
                await ws.send_json({"type": "recording", **result})
        except (ProtocolError, PlayError) as exc:
            await ws.send_json({"type": "error", "message": str(exc)})
        except (ValueError, TypeError) as exc:  # refused by the env: it was left as it was
            await ws.send_json({"type": "error", "message": str(exc)})
        except ConnectionResetError:
            pass
        except Exception as exc:  # a failure while generating: the world is unchanged, the server goes on
            await ws.send_json({"type": "error", "message": f"failed: {type(exc).__name__}: {exc}"})

    async def _send_block(self, ws, block, cause: str) -> None:
        t0 = time.perf_counter()
        pngs = await self.run(block.png_frames)
        meta = block.meta()
        meta["timing"]["png_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        await ws.send_json({"type": "block", "cause": cause, **meta})
        for png in pngs:
            await ws.send_bytes(png)

    # ------------------------------------------------------------------------------- shutdown
    async def _close_sockets(self, app) -> None:
        for ws in list(self.owners.values()):
            await ws.close()

    async def _cleanup(self, app) -> None:
        await self.run(self.close)
        self.executor.shutdown(wait=True)

    def close(self) -> str | None:
        """Close every world; write the dataset when one was asked for. Returns its id, if written."""
        for session in self.worlds.values():
            session.close()
        written = None
        if self.dataset_id is not None:
            written = self.write_dataset()
        self.worlds.clear()
        return written

    def write_dataset(self) -> str | None:
        """Write every tab's finished episodes (the branches kept after rewinds) as one Minari dataset."""
        from yume_env.datasets import env_spec_for, write_dataset
        from yume_env.datasets.minari_io import EpisodeRecorder

        recorders = [s.recorder for s in self.worlds.values() if isinstance(s.recorder, EpisodeRecorder)]
        for r in recorders:
            r.finish_episode()
        episodes = [ep for r in recorders for ep in r.episodes]
        if not episodes:
            print(f"yume-world play: no episode was played; dataset {self.dataset_id} not written")
            return None
        images = {k: v for r in recorders for k, v in r.start_images.items()}
        spec = env_spec_for(self.config.env_id, **self.config.env_kwargs())
        write_dataset(
            self.dataset_id,
            episodes,
            spec,
            observation_space=recorders[0].observation_space,
            action_space=recorders[0].action_space,
            algorithm_name="human (yume-world play)",
            start_images=images,
        )
        print(f"yume-world play: wrote Minari dataset {self.dataset_id} ({len(episodes)} episodes)")
        return self.dataset_id


def serve_in_thread(server: PlayServer, host: str = "127.0.0.1", port: int = 0):
    """Serve on a background thread (tests, notebooks). Returns ``(url, stop)``; ``stop()`` shuts the
    server down and closes its worlds (writing the dataset, if one was asked for)."""
    import threading

    web = require_aiohttp()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.build_app())
    started: dict = {}
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port)
            loop.run_until_complete(site.start())
            started["port"] = runner.addresses[0][1]
        except BaseException as exc:  # reported to the caller
            started["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="yume-play-server", daemon=True)
    thread.start()
    ready.wait(60)
    if "error" in started:
        raise started["error"]

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)

    return f"http://{host}:{started['port']}/", stop


def serve(server: PlayServer, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False) -> None:
    """Serve until interrupted (Ctrl+C), then close the worlds (and write the dataset)."""
    web = require_aiohttp()
    app = server.build_app()
    url = f"http://{host}:{port}/"
    print(f"yume-world play: {server.config.world} world at {url} (Ctrl+C to stop)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    web.run_app(app, host=host, port=port, print=None, handle_signals=True)
