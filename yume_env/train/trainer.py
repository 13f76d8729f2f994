"""The training run: data, VAE, latents, DiT, checkpoints and resume.

A run lives in one output folder::

    OUT/checkpoint/       the model in the official folder layout (EMA DiT weights): load_checkpoint reads it
    OUT/train_state.pt    what resuming needs beyond it: raw DiT weights, EMA, optimizer states
    OUT/state.json        phase, step counters, next data seed, seconds spent, loss history
    OUT/latents.pt        (optional) the encoded episodes, so a resumed DiT phase needs no re-rendering
    OUT/loss_curve.png    the loss curves

Phases run in order: ``vae`` (autoencoder on rendered windows), then ``dit`` (flow matching on the
latents of rendered episodes, left-right mirrored copies included). Data keeps being rendered in
worker processes while the model trains; in the DiT phase new episodes are encoded and added as
they arrive. Every phase stops at its step target or at its time budget for this invocation,
whichever comes first, so a run can be split over several invocations with ``resume=True``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from yume_env.model.pipeline import YumeModel, build_model, load_checkpoint, resolve_device, save_checkpoint
from yume_env.model.presets import TINY, TINY_FAMILY, ModelPreset, get_preset, with_configs
from yume_env.train.data import (
    BLOCK_FRAMES,
    EncodedEpisode,
    Episode,
    EpisodeSource,
    FramePool,
    LatentStore,
    encode_episode,
    to_video,
)
from yume_env.train.dit_train import (
    EMA,
    FlowConfig,
    ValidationBatch,
    flow_matching_loss,
    validation_losses,
    with_own_history,
)
from yume_env.train.vae_train import VAELossWeights, decoder_loss, vae_loss

CHECKPOINT_DIR = "checkpoint"
TRAIN_STATE = "train_state.pt"
STATE_JSON = "state.json"
LATENTS = "latents.pt"
LOSS_PNG = "loss_curve.png"

#: Training scenes use procedural seeds from here on; evaluation uses seeds below it.
TRAIN_SEED_START = 100_000


class TrainingError(RuntimeError):
    """A run cannot start or continue (bad folder, missing state, inconsistent settings)."""


class TrainingUsageError(TrainingError):
    """A run asked for something that cannot be done as asked (a usage error: fix the options)."""


@dataclass
class TrainConfig:
    """Settings of one training invocation (see ``yume-world train --help`` for each)."""

    out: Path = Path("runs/tiny")
    device: str | None = None
    seed: int = 0
    resume: bool = False
    init: Path | None = None
    preset: str = TINY.name  # architecture of a new run (a tiny preset), before the overrides below
    # data
    resolution: tuple[int, int] | None = None  # None: the model's default resolution
    blocks_per_episode: int = 8
    episodes: int | None = 200
    workers: int = 0
    encode_workers: int = 0
    event_rate: float = 0.12
    start_event_rate: float = 0.1
    mirror: bool = True
    # autoencoder
    vae_steps: int = 2000
    vae_time: float | None = None
    vae_batch: int = 8
    vae_lr: float = 3e-4
    vae_window: int = 4
    vae_crop: tuple[int, int] | None = None
    linear_encoder: bool = False  # tiny-8x: closed-form linear code in the encoder, then frozen
    linear_encoder_episodes: int = 30  # 3-block episodes the code is fitted on
    # decoder fine-tuning (encoder frozen, full frames)
    decoder_steps: int = 0
    decoder_time: float | None = None
    decoder_batch: int = 2
    decoder_lr: float = 5e-4
    # transformer
    dit_steps: int = 10000
    dit_time: float | None = None
    batch: int = 32
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.01
    ema: float = 0.999
    max_history_blocks: int | None = None
    history_noise: float = 0.05  # largest std of the Gaussian noise on history blocks
    self_history: float = 0.0  # share of samples whose newest history block is the model's own
    # "uniform", or "code-variance" (closed-form encoder only): weigh each latent channel's MSE by
    # the variance the code had before whitening, i.e. by what it contributes to the picture
    dit_loss_weights: str = "uniform"
    # bookkeeping
    checkpoint_every: float = 600.0
    log_every: int = 25
    val_every: int = 250
    save_latents: bool = True
    export: Path | None = None
    export_dtype: str = "float16"
    progress: bool = True
    amp: bool = True
    dit_overrides: dict = field(default_factory=dict)
    vae_overrides: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ helpers
def tiny_preset(
    dit_overrides: dict | None = None, vae_overrides: dict | None = None, base: str | ModelPreset = TINY
) -> ModelPreset:
    """A tiny preset (``base``: ``tiny`` or ``tiny-8x``) with some DiT/VAE fields replaced (for
    experiments and fast tests)."""
    p = get_preset(base)
    if p.name not in TINY_FAMILY:
        raise ValueError(f"preset: got {p.name!r}; accepted: {', '.join(sorted(TINY_FAMILY))}")
    return with_configs(
        p, dit=replace(p.dit, **(dit_overrides or {})), vae=replace(p.vae, **(vae_overrides or {}))
    )


def _atomic_dir_write(target: Path, write: Callable[[Path], None]) -> None:
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    write(tmp)
    old = target.with_name(target.name + ".old")
    if target.exists():
        if old.exists():
            shutil.rmtree(old)
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


def export_checkpoint(model: YumeModel, folder: Path, dtype: str = "float16") -> Path:
    """Write ``model`` in the official layout with DiT and VAE weights in ``dtype`` (small files);
    :func:`load_checkpoint` casts them back to float32 on a CPU."""
    dt = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
    if dt is None:
        raise ValueError(f"export dtype: got {dtype!r}; accepted: float32, float16, bfloat16")
    vae = model.vae
    half = copy.deepcopy(vae).to(dt) if dt != torch.float32 else vae
    model.vae = half
    try:
        _atomic_dir_write(Path(folder), lambda p: save_checkpoint(model, p, dit_dtype=dt))
    finally:
        model.vae = vae
    return Path(folder)


def _optimize(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One step of ``opt`` on ``loss``, gradients clipped to norm 1 over the optimizer's parameters."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
    opt.step()


class _Timer:
    def __init__(self, budget: float | None):
        self.start = time.perf_counter()
        self.budget = budget

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over(self) -> bool:
        return self.budget is not None and self.elapsed >= self.budget


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True)


# ------------------------------------------------------------------------------------------ trainer
class Trainer:
    """One invocation of a training run (see the module doc)."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.log = log
        self.out = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.rng = np.random.default_rng(cfg.seed)
        self.state: dict = {
            "phase": "vae",
            "vae_step": 0,
            "dit_step": 0,
            "decoder_step": 0,
            "first_seed": TRAIN_SEED_START + 1000 * cfg.seed,
            "next_seed": TRAIN_SEED_START + 1000 * cfg.seed,
            "seconds": {"vae": 0.0, "encode": 0.0, "dit": 0.0, "decoder": 0.0},
            "episodes_seen": 0,
            "losses": {"vae": [], "dit": [], "decoder": []},
            "runs": [],
        }
        self.model: YumeModel | None = None
        self.vae_opt = None
        self.dit_opt = None
        self.ema: EMA | None = None
        self.episodes: list[Episode] = []
        self.store: LatentStore | None = None
        self.contexts: list[torch.Tensor] = []
        self.source: EpisodeSource | None = None
        self._code = None  # the closed-form code (LinearCode), fitted again on first use
        self._code_encoder = None  # what encodes episodes in a closed-form run (see _episode_encoder)
        self._last_ckpt = time.perf_counter()

    # ------------------------------------------------------------------ setup
    def _autocast(self):
        if self.device.type == "cuda" and self.cfg.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def setup(self) -> None:
        cfg = self.cfg
        ckpt = self.out / CHECKPOINT_DIR
        if cfg.workers == 0 and cfg.episodes is None:
            raise TrainingUsageError(
                "episodes: rendering without workers needs a number of episodes (got unlimited)"
            )
        if cfg.resume:
            if not (self.out / STATE_JSON).is_file() or not ckpt.is_dir():
                raise TrainingUsageError(
                    f"resume: {self.out} holds no run to resume (missing {STATE_JSON} or {CHECKPOINT_DIR}/); "
                    "start without --resume"
                )
            self.state.update(json.loads((self.out / STATE_JSON).read_text()))
            self.model = load_checkpoint(ckpt, self.device, dtype="float32")
        elif cfg.init is not None:
            self.model = load_checkpoint(cfg.init, self.device, dtype="float32")
        else:
            if (self.out / STATE_JSON).exists():
                raise TrainingUsageError(
                    f"out: {self.out} already holds a run; pass --resume to continue it or choose another folder"
                )
            preset = tiny_preset(cfg.dit_overrides, cfg.vae_overrides, cfg.preset)
            self.model = build_model(preset, self.device, dtype="float32", seed=cfg.seed)
        if cfg.resolution is None and self.state["runs"]:
            cfg.resolution = tuple(self.state["runs"][-1]["config"].get("resolution") or ()) or None
        cfg.resolution = self.model.preset.check_resolution(cfg.resolution)
        self.out.mkdir(parents=True, exist_ok=True)
        m = self.model
        self.vae_opt = torch.optim.AdamW(
            m.vae.parameters(), lr=cfg.vae_lr, betas=(0.9, 0.99), weight_decay=0.0
        )
        self.dit_opt = torch.optim.AdamW(
            m.dit.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay
        )
        self.ema = EMA(m.dit, cfg.ema)
        decoder_params = list(m.vae.decoder.parameters()) + list(m.vae.conv2.parameters())
        self.dec_opt = torch.optim.AdamW(
            decoder_params, lr=cfg.decoder_lr, betas=(0.9, 0.99), weight_decay=0.0
        )
        if cfg.resume and (self.out / TRAIN_STATE).is_file():
            ts = torch.load(str(self.out / TRAIN_STATE), map_location="cpu", weights_only=True)
            m.dit.load_state_dict(ts["dit"])
            self.ema.load_state_dict(ts["ema"])
            if "dit_opt" in ts:
                self.dit_opt.load_state_dict(ts["dit_opt"])
            if "vae_opt" in ts:
                self.vae_opt.load_state_dict(ts["vae_opt"])
            if "dec_opt" in ts:
                self.dec_opt.load_state_dict(ts["dec_opt"])
        for g in self.dit_opt.param_groups:
            g["lr"] = cfg.lr
        for g in self.vae_opt.param_groups:
            g["lr"] = cfg.vae_lr
        for g in self.dec_opt.param_groups:
            g["lr"] = cfg.decoder_lr
        for key, value in (("decoder_step", 0), ("losses", {})):
            self.state.setdefault(key, value)
        self.state["losses"].setdefault("decoder", [])
        self.state["seconds"].setdefault("decoder", 0.0)
        self.rng = np.random.default_rng([cfg.seed, self.state["vae_step"], self.state["dit_step"]])
        if cfg.resume and cfg.episodes is not None:
            cached = cfg.save_latents and (self.out / LATENTS).is_file()
            if self.state["phase"] == "vae" or not cached:
                # the rendered episodes are not kept: render the same finite data set again
                self.state["next_seed"] = self.state["first_seed"]
                self.state["episodes_seen"] = 0
        if cfg.dit_loss_weights != "uniform" and not (cfg.linear_encoder or self.state.get("linear_encoder")):
            raise TrainingUsageError(
                f"dit loss weights: got {cfg.dit_loss_weights!r} for a run without the closed-form "
                "encoder; accepted: 'uniform', or 'code-variance' with --linear-encoder"
            )
        if cfg.linear_encoder and not self.state.get("linear_encoder"):
            self._install_linear_encoder()
        if self.state["phase"] == "vae" and (
            cfg.vae_steps <= self.state["vae_step"] or self.state.get("linear_encoder")
        ):
            self.state["phase"] = "dit"
        self.state["runs"].append(
            {
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "device": str(self.device),
                "config": _jsonable(cfg),
            }
        )
        self.log(
            f"device {self.device}; phase {self.state['phase']}; vae step {self.state['vae_step']}, "
            f"dit step {self.state['dit_step']}; parameters {m.parameter_count()}"
        )

    def _install_linear_encoder(self) -> None:
        """Write the closed-form linear code into the encoder (:mod:`yume_env.train.linear_code`).

        The code is fitted on the run's first ``linear_encoder_episodes`` training seeds (3 blocks
        each). A decoder that was already trained (a resumed or ``--init`` run) is kept and fed
        through ``conv2`` refitted by least squares, so that it first sees its old latents as
        closely as a linear map of the new ones allows. The encoder is frozen from here on: the VAE
        phase is skipped, latents cached from the old encoder are dropped, and the decoder is
        trained with ``--decoder-steps``.
        """
        from yume_env.train.data import rollout_episode
        from yume_env.train.linear_code import check_layout, install_linear_encoder, refit_decoder_input

        cfg, st, vae = self.cfg, self.state, self.model.vae
        try:
            check_layout(vae)
        except ValueError as exc:
            raise TrainingUsageError(f"linear encoder: {exc}") from None
        first = int(st["first_seed"])
        n_fit = max(1, cfg.linear_encoder_episodes)

        def video(seed: int, blocks: int) -> torch.Tensor:  # [blocks, 3, 29, H, W] in [-1, 1]
            f = rollout_episode(seed, blocks, cfg.resolution).frames
            return torch.from_numpy(f.astype(np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)

        t0 = time.perf_counter()
        code = self._code = self._fit_linear_code(first, n_fit)
        self._code_encoder = None
        trained = cfg.resume or cfg.init is not None
        old = copy.deepcopy(vae).eval() if trained else None
        install_linear_encoder(vae, code)
        r2 = None
        if old is not None:
            clips = torch.cat([video(seed, 1) for seed in range(first + n_fit, first + n_fit + 10)])
            r2 = refit_decoder_input(vae, old, clips.to(vae.conv1.weight.device))
        st["linear_encoder"] = {
            "fit_seeds": [first, first + n_fit],
            "decoder_warm_start_r2": r2,
            "seconds": round(time.perf_counter() - t0, 1),
            "code_std": _spectrum(code),
        }
        if (self.out / LATENTS).is_file():  # encoded by the old encoder
            (self.out / LATENTS).unlink()
        if cfg.episodes is not None:
            st["next_seed"] = st["first_seed"]
            st["episodes_seen"] = 0
        self.log(
            f"linear encoder: fitted on seeds {first}-{first + n_fit - 1} in {st['linear_encoder']['seconds']} s"
            + (f"; decoder input refitted (R2 {r2:.2f})" if r2 is not None else "")
        )

    def _fit_linear_code(self, first: int, n_fit: int):
        """The closed-form code of seeds ``first .. first + n_fit - 1`` (the same code every time)."""
        from yume_env.train.linear_code import fit_linear_code_on_seeds

        try:
            return fit_linear_code_on_seeds(range(first, first + n_fit), self.cfg.resolution)
        except ValueError as exc:
            raise TrainingUsageError(f"linear encoder: {exc}") from None

    def _dit_channel_weights(self) -> tuple[float, ...] | None:
        """Per-channel weights of the transformer's loss for ``cfg.dit_loss_weights`` (mean 1)."""
        if self.cfg.dit_loss_weights == "uniform":
            return None
        info = self.state["linear_encoder"]  # setup() refused runs without it
        if "code_std" not in info:  # installed before the spectrum was recorded: fit it again
            info["code_std"] = _spectrum(self._linear_code())
        var = np.square(np.asarray(info["code_std"], dtype=np.float64))
        return tuple(float(x) for x in var * len(var) / var.sum())

    def _seeds_to_render(self) -> range | itertools.count:
        """Seeds of the episodes still to render: from ``next_seed`` to the ``episodes`` total, or on."""
        start, cfg = int(self.state["next_seed"]), self.cfg
        if cfg.episodes is None:
            return itertools.count(start)
        return range(start, start + max(cfg.episodes - self.state["episodes_seen"], 0))

    def _new_source(self, seeds, workers: int, encoder: tuple | None = None) -> EpisodeSource:
        """An episode source for ``seeds`` with this run's episode settings."""
        cfg = self.cfg
        return EpisodeSource(
            seeds,
            cfg.blocks_per_episode,
            cfg.resolution,
            workers,
            cfg.event_rate,
            cfg.start_event_rate,
            encoder=encoder,
        )

    def _source(self) -> EpisodeSource:
        if self.source is None:
            self.source = self._new_source(self._seeds_to_render(), self.cfg.workers)
        return self.source

    def _receive(self, episodes: list) -> list:
        """Book received episodes (frames or latents) in the run state; returns them."""
        for ep in episodes:
            self.state["next_seed"] = max(int(self.state["next_seed"]), ep.seed + 1)
        self.state["episodes_seen"] += len(episodes)
        return episodes

    def _checkpoint_if_due(self, phase: str, seconds: float, now: float) -> float:
        """Save when ``checkpoint_every`` has passed, booking ``seconds`` to ``phase`` first; returns
        the seconds still to book (0 after a save)."""
        if now - self._last_ckpt <= self.cfg.checkpoint_every:
            return seconds
        self.state["seconds"][phase] += seconds
        self.save()
        return 0.0

    # ------------------------------------------------------------------ phases
    def train_vae(self) -> None:
        cfg, st = self.cfg, self.state
        vae = self.model.vae
        vae.train()
        pool = FramePool()
        src = self._source()
        timer = _Timer(cfg.vae_time)
        weights = VAELossWeights()
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + st["vae_step"])
        bar = _progress(cfg.vae_steps, st["vae_step"], "vae", cfg.progress)
        st.setdefault("vae_val", [])
        val = self._validation_clip()
        t_acc, last = 0.0, time.perf_counter()
        if src.workers == 0:  # inline rendering: render the whole data set first
            first = self._receive(src.take(10**9 if cfg.episodes is not None else 1))
            pool.add(first)
            self.episodes += first
        while st["vae_step"] < cfg.vae_steps and not timer.over():
            new = self._receive(src.poll())
            if not pool and not new:
                new = self._receive(src.take(1))
                if not new:
                    raise TrainingError("data: no episodes could be rendered for the autoencoder")
            pool.add(new)
            self.episodes += new
            latents = int(self.rng.integers(1, cfg.vae_window + 1))
            clips = pool.sample(self.rng, cfg.vae_batch, latents, crop=cfg.vae_crop)
            video = to_video(clips, self.device)
            with self._autocast():
                loss, stats = vae_loss(vae, video, weights, gen)
            _optimize(self.vae_opt, loss)
            st["vae_step"] += 1
            bar.update(1)
            now = time.perf_counter()
            t_acc += now - last
            last = now
            if st["vae_step"] % cfg.log_every == 0 or st["vae_step"] == cfg.vae_steps:
                st["losses"]["vae"].append(
                    [st["vae_step"], stats["loss"], stats["psnr"], stats["latent_std"]]
                )
                bar.set_postfix(loss=f"{stats['loss']:.4f}", psnr=f"{stats['psnr']:.1f}", eps=len(pool))
            if st["vae_step"] % cfg.val_every == 0:
                st["vae_val"].append([st["vae_step"], self._validate_vae(val)])
                bar.write(f"vae step {st['vae_step']}: held-out reconstruction {st['vae_val'][-1][1]:.2f} dB")
                last = time.perf_counter()
            t_acc = self._checkpoint_if_due("vae", t_acc, now)
        bar.close()
        st["seconds"]["vae"] += t_acc
        vae.eval()
        if st["vae_step"] >= cfg.vae_steps:
            st["phase"] = "dit"
        self.log(f"vae: step {st['vae_step']}, {len(pool)} episodes, {timer.elapsed:.0f} s this run")

    def _validation_clip(self) -> torch.Tensor:
        """A fixed held-out clip (full frames of an evaluation-range seed) for reconstruction PSNR."""
        from yume_env.train.data import rollout_episode

        ep = rollout_episode(
            TRAIN_SEED_START - 1, 2, self.cfg.resolution, event_rate=0.0, start_event_rate=0.0
        )
        return to_video(np.stack([ep.frames[0, :13], ep.frames[1, -13:]]))

    @torch.no_grad()
    def _validate_vae(self, clip: torch.Tensor) -> float:
        vae = self.model.vae
        vae.eval()
        rec = torch.cat([vae.decode(vae.encode(clip[i : i + 1].to(self.device))) for i in range(len(clip))])
        vae.train()
        mse = torch.mean((rec.cpu() - clip) ** 2).item()
        return 10.0 * math.log10(4.0 / max(mse, 1e-12))

    def _encoding_source(self) -> EpisodeSource:
        """The DiT phase's source when workers encode (``encode_workers``): episodes arrive as latents."""
        cfg = self.cfg
        if self.source is not None and self.source.encoding:
            return self.source
        if self.source is not None:
            # the autoencoder phase's renderers: the episodes they had in flight are rendered again
            self.source.close()
            self.source = None
        encoder = self._episode_encoder()
        if encoder is self.model.vae:
            encoder = (encoder.config, {k: v.detach().float().cpu() for k, v in encoder.state_dict().items()})
        self.source = self._new_source(
            self._seeds_to_render(), cfg.encode_workers, encoder=(encoder, cfg.mirror)
        )
        return self.source

    def _episode_encoder(self):
        """What encodes the transformer's episodes: the VAE, or, in a run with the closed-form
        encoder, the code computed directly (:class:`LinearCodeEncoder`, about 200 times faster on
        a CPU) once it is checked to give the installed encoder's latents on a held-out block."""
        if not self.state.get("linear_encoder"):
            return self.model.vae
        if self._code_encoder is None:
            from yume_env.train.data import rollout_episode
            from yume_env.train.linear_code import LinearCodeEncoder

            encoder = LinearCodeEncoder(self._linear_code())
            ep = rollout_episode(TRAIN_SEED_START - 1, 1, self.cfg.resolution)
            clip = to_video(ep.frames, self.device)
            with torch.no_grad():
                rms = torch.sqrt(torch.mean((encoder.encode(clip) - self.model.vae.encode(clip)) ** 2)).item()
            if rms > 0.05:  # e.g. a VAE whose encoder was changed after the code was installed
                self.log(
                    f"linear encoder: the direct code is {rms:.3f} rms off the VAE's; encoding with the VAE"
                )
                self._code_encoder = self.model.vae
            else:
                self.log(f"linear encoder: episodes encoded by the code directly ({rms:.4f} rms off the VAE)")
                self._code_encoder = encoder
        return self._code_encoder

    def _linear_code(self):
        """The run's closed-form code, fitted again from its seeds (deterministic) on first use."""
        if self._code is None:
            first, end = self.state["linear_encoder"]["fit_seeds"]
            self._code = self._fit_linear_code(first, end - first)
        return self._code

    @torch.no_grad()
    def _dit_validation_set(self, episodes: int = 4) -> list[ValidationBatch]:
        """Held-out transformer samples: every block of ``episodes`` evaluation-range episodes (seeds
        below the training range, not the benchmark's 0..N), encoded by the run's VAE, each with a
        fixed noise and one of the sampler's noise levels, plus camera-reversed captions."""
        from yume_env.train.data import REVERSE_LOOK, rollout_episode
        from yume_env.world.captions import render_caption

        cfg, m = self.cfg, self.model
        rendered = [
            rollout_episode(TRAIN_SEED_START - 2 - i, cfg.blocks_per_episode, cfg.resolution)
            for i in range(episodes)
        ]
        encoder = self._episode_encoder()
        encoded = [encode_episode(encoder, ep, mirror=False, device=self.device) for ep in rendered]
        gen = torch.Generator().manual_seed(1234)
        levels = FlowConfig().sampler_levels()
        out = []
        for k in range(cfg.blocks_per_episode):
            history, target, caps, swapped = [], [], [], []
            for ep, enc in zip(rendered, encoded):
                start, blocks, captions = enc.parts[0]
                history.append(torch.cat([start, *blocks[:k]], dim=1))
                target.append(blocks[k])
                caps.append(captions[k])
                look = int(ep.looks[k])
                swapped.append(
                    render_caption(int(ep.moves[k]), REVERSE_LOOK[look], ep.events[k]) if look else None
                )
            target_t = torch.stack(target)
            enc = m.encode_text(caps + [c for c in swapped if c is not None])
            it = iter(enc[len(caps) :])
            out.append(
                ValidationBatch(
                    history=torch.stack(history).float(),
                    target=target_t.float(),
                    noise=torch.randn(target_t.shape, generator=gen),
                    sigmas=np.array([levels[(k + j) % len(levels)] for j in range(len(rendered))]),
                    contexts=[c.to(self.device) for c in enc[: len(caps)]],
                    swapped=[None if c is None else next(it).to(self.device) for c in swapped],
                )
            )
        return out

    def _validate_dit(self, val: list[ValidationBatch]) -> str:
        """Held-out losses of the EMA weights (what ships), recorded in ``state['dit_val']`` as
        ``[step, loss, camera-block loss, same with the camera direction reversed]``."""
        with self._ema_weights():
            res = validation_losses(self.model.dit, val)
        nan = float("nan")
        row = [self.state["dit_step"], res["loss"], res.get("camera", nan), res.get("camera_swapped", nan)]
        self.state["dit_val"].append(row)
        return (
            f"dit step {row[0]}: held-out loss {row[1]:.4f}; camera blocks {row[2]:.4f}, "
            f"with the direction reversed {row[3]:.4f}"
        )

    @torch.no_grad()
    def _encode(self, episodes: list[Episode | EncodedEpisode]) -> None:
        """Add episodes to the latent store, encoding (and mirroring) those that arrive as frames."""
        if not episodes:
            return
        t0 = time.perf_counter()
        for ep in episodes:
            if isinstance(ep, Episode):
                ep = encode_episode(self._episode_encoder(), ep, self.cfg.mirror, self.device)
            for start, blocks, captions in ep.parts:
                self.store.add(start, blocks, captions, ep.seed)
        new_caps = self.store.captions[len(self.contexts) :]
        if new_caps:
            ctx = self.model.encode_text(new_caps)
            self.contexts += [c.clone().to(self.device) for c in ctx]
        self.state["seconds"]["encode"] += time.perf_counter() - t0

    def train_dit(self) -> None:
        cfg, st = self.cfg, self.state
        m = self.model
        if self.store is None:
            self.store = LatentStore(self.device)
            cached = self.out / LATENTS
            if cfg.resume and cached.is_file():
                self.store = LatentStore.load(cached, self.device)
                self.contexts = (
                    [c.clone().to(self.device) for c in m.encode_text(self.store.captions)]
                    if self.store.captions
                    else []
                )
                self.log(f"dit: loaded {len(self.store)} encoded episodes from {cached}")
        self._encode(self.episodes)
        self.episodes = []
        if cfg.encode_workers:
            src = self._encoding_source()
            if cfg.episodes is not None and not src.done:
                # a finite data set is rendered and encoded in full before training: on a machine
                # without a GPU the trainer would only compete with the workers for the cores
                t0 = time.perf_counter()
                todo = cfg.episodes - st["episodes_seen"]
                items: list[EncodedEpisode] = []
                with _progress(todo, 0, "render+encode", cfg.progress) as bar:
                    while not src.done:
                        got = src.take(1)
                        items += got
                        bar.update(len(got))
                src.close()  # the workers are idle from here on: free their memory
                items.sort(key=lambda e: e.seed)
                st["seconds"]["encode"] += time.perf_counter() - t0
                self._encode(self._receive(items))
                self.log(f"dit: {len(self.store)} encoded episodes, {self.store.num_blocks} blocks")
        else:
            src = self._source()
        if len(self.store) == 0 or (src.workers == 0 and not src.done and cfg.episodes is not None):
            self._encode(self._receive(src.take(10**9 if src.workers == 0 else src.workers)))
        if len(self.store) == 0:
            raise TrainingError("data: no episodes available for the transformer")
        m.dit.train()
        flow = FlowConfig(
            history_noise=cfg.history_noise,
            self_history_rate=cfg.self_history,
            channel_weights=self._dit_channel_weights(),
        )
        val = self._dit_validation_set() if cfg.val_every else []
        st.setdefault("dit_val", [])
        timer = _Timer(cfg.dit_time)
        bar = _progress(cfg.dit_steps, st["dit_step"], "dit", cfg.progress)
        t_acc, last = 0.0, time.perf_counter()
        while st["dit_step"] < cfg.dit_steps and not timer.over():
            if st["dit_step"] % 20 == 0:
                self._encode(self._receive(src.poll()))
            step = st["dit_step"]
            lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
            for g in self.dit_opt.param_groups:
                g["lr"] = lr
            batch = self.store.sample(self.rng, cfg.batch, self.contexts, cfg.max_history_blocks)
            with self._autocast():
                # at rate 0 this returns the batch as it is, without drawing from the run's rng
                batch, _ = with_own_history(m.dit, batch, self.rng, flow.self_history_rate, flow)
                loss, stats = flow_matching_loss(m.dit, batch, self.rng, flow)
            _optimize(self.dit_opt, loss)
            self.ema.update(m.dit, step)
            st["dit_step"] += 1
            bar.update(1)
            now = time.perf_counter()
            t_acc += now - last
            last = now
            if st["dit_step"] % cfg.log_every == 0 or st["dit_step"] == cfg.dit_steps:
                st["losses"]["dit"].append([st["dit_step"], stats["loss"], stats["x0_mse_high_noise"]])
                bar.set_postfix(loss=f"{stats['loss']:.4f}", eps=len(self.store), lr=f"{lr:.1e}")
            if val and st["dit_step"] % cfg.val_every == 0:
                bar.write(self._validate_dit(val))
                last = time.perf_counter()  # validation time is not training time
            t_acc = self._checkpoint_if_due("dit", t_acc, now)
        bar.close()
        st["seconds"]["dit"] += t_acc
        if val and (not st["dit_val"] or st["dit_val"][-1][0] != st["dit_step"]):
            self.log(self._validate_dit(val))
        m.dit.eval()
        if st["dit_step"] >= cfg.dit_steps:
            st["phase"] = "done"
        self.log(
            f"dit: step {st['dit_step']}, {len(self.store)} encoded episodes "
            f"({self.store.num_blocks} blocks), {timer.elapsed:.0f} s this run"
        )

    def train_decoder(self) -> None:
        """Fine-tune the VAE decoder on full frames with the encoder frozen (latents stay valid)."""
        cfg, st = self.cfg, self.state
        vae = self.model.vae
        src = self._new_source(
            range(st["first_seed"], st["first_seed"] + (cfg.episodes or 10**9)), cfg.workers
        )
        pool = FramePool()
        val = self._validation_clip()
        gen = torch.Generator().manual_seed(cfg.seed * 31 + st["decoder_step"])
        timer = _Timer(cfg.decoder_time)
        bar = _progress(cfg.decoder_steps, st["decoder_step"], "decoder", cfg.progress)
        st.setdefault("decoder_val", [[st["decoder_step"], self._validate_vae(val)]])
        vae.train()
        t_acc, last = 0.0, time.perf_counter()
        try:
            if src.workers == 0:
                pool.add(src.take(min(cfg.episodes or 8, 32)))
            while st["decoder_step"] < cfg.decoder_steps and not timer.over():
                pool.add(src.poll())
                if not pool:
                    pool.add(src.take(1))
                clips = pool.sample(
                    self.rng, cfg.decoder_batch, int(self.rng.integers(1, cfg.vae_window + 1))
                )
                with self._autocast():
                    loss, stats = decoder_loss(vae, to_video(clips, self.device), generator=gen)
                _optimize(self.dec_opt, loss)
                st["decoder_step"] += 1
                bar.update(1)
                now = time.perf_counter()
                t_acc += now - last
                last = now
                if st["decoder_step"] % cfg.log_every == 0:
                    st["losses"]["decoder"].append([st["decoder_step"], stats["loss"], stats["psnr"]])
                    bar.set_postfix(loss=f"{stats['loss']:.4f}", psnr=f"{stats['psnr']:.1f}", eps=len(pool))
                if st["decoder_step"] % cfg.val_every == 0:
                    st["decoder_val"].append([st["decoder_step"], self._validate_vae(val)])
                    bar.write(
                        f"decoder step {st['decoder_step']}: held-out reconstruction {st['decoder_val'][-1][1]:.2f} dB"
                    )
                    last = time.perf_counter()
                t_acc = self._checkpoint_if_due("decoder", t_acc, now)
        finally:
            src.close()
            vae.eval()
            bar.close()
        st["seconds"]["decoder"] += t_acc
        st["decoder_val"].append([st["decoder_step"], self._validate_vae(val)])
        self.log(
            f"decoder: step {st['decoder_step']}, held-out reconstruction {st['decoder_val'][-1][1]:.2f} dB"
        )

    # ------------------------------------------------------------------ saving
    @contextlib.contextmanager
    def _ema_weights(self):
        """The DiT holds the EMA weights (what ships) inside the block; yields the raw weights,
        which it holds again afterwards."""
        dit = self.model.dit
        raw = {k: v.detach().clone() for k, v in dit.state_dict().items()}
        self.ema.copy_to(dit)
        try:
            yield raw
        finally:
            dit.load_state_dict(raw)

    def save(self) -> None:
        """Checkpoint (official layout, EMA DiT weights), training state, loss history and plot."""
        m = self.model
        with self._ema_weights() as raw:
            _atomic_dir_write(self.out / CHECKPOINT_DIR, lambda p: save_checkpoint(m, p))
        ts = {
            "dit": {k: v.cpu() for k, v in raw.items()},
            "ema": self.ema.state_dict(),
            "dit_opt": self.dit_opt.state_dict(),
            "vae_opt": self.vae_opt.state_dict(),
            "dec_opt": self.dec_opt.state_dict(),
        }
        tmp = self.out / (TRAIN_STATE + ".tmp")
        torch.save(ts, str(tmp))
        os.replace(tmp, self.out / TRAIN_STATE)
        (self.out / STATE_JSON).write_text(json.dumps(self.state, indent=1))
        if self.cfg.save_latents and self.store is not None and len(self.store):
            self.store.save(self.out / LATENTS)
        try:
            from yume_env.train.plot import plot_losses

            val = {k: self.state.get(f"{k}_val") for k in ("vae", "decoder", "dit")}
            plot_losses(self.state["losses"], self.out / LOSS_PNG, val)
        except ImportError as exc:  # matplotlib is optional
            self.log(f"loss plot skipped: {exc}")
        self._last_ckpt = time.perf_counter()

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        try:
            self.setup()
            if self.state["phase"] == "vae":
                self.train_vae()
                self.save()
            if self.state["phase"] != "vae":
                if self.state["phase"] == "done" and self.cfg.dit_steps > self.state["dit_step"]:
                    self.state["phase"] = "dit"
                if self.state["phase"] == "dit" and self.cfg.dit_steps <= self.state["dit_step"]:
                    # nothing left to train (e.g. a run stopped by hand, resumed for the decoder):
                    # rendering and encoding its episodes again would be wasted work
                    self.state["phase"] = "done"
                if self.state["phase"] == "dit":
                    self.train_dit()
                if self.state["decoder_step"] < self.cfg.decoder_steps:
                    self.save()
                    self.train_decoder()
            self.save()
            if self.cfg.export is not None:
                self.ema.copy_to(self.model.dit)
                export_checkpoint(self.model, Path(self.cfg.export), self.cfg.export_dtype)
                self.log(f"exported the model to {self.cfg.export} ({self.cfg.export_dtype})")
            return self.summary()
        except KeyboardInterrupt:
            if self.model is not None and self.ema is not None:
                self.save()
            raise
        finally:
            if self.source is not None:
                self.source.close()

    def summary(self) -> dict:
        st = self.state
        last = lambda k: st["losses"][k][-1][1] if st["losses"][k] else math.nan  # noqa: E731
        return {
            "phase": st["phase"],
            "vae_step": st["vae_step"],
            "dit_step": st["dit_step"],
            "vae_loss": last("vae"),
            "vae_psnr": st["losses"]["vae"][-1][2] if st["losses"]["vae"] else math.nan,
            "dit_loss": last("dit"),
            "episodes_seen": st["episodes_seen"],
            "seconds": st["seconds"],
            "checkpoint": str(self.out / CHECKPOINT_DIR),
        }


def _spectrum(code) -> list[float]:
    """The code's per-channel standard deviation before whitening, as ``state.json`` keeps it."""
    return [round(float(x), 6) for x in code.scale]


def _jsonable(cfg: TrainConfig) -> dict:
    out = {}
    for k, v in asdict(cfg).items():
        out[k] = str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v)
    return out


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or continue) a training run; returns a summary dict."""
    return Trainer(cfg, log).run()


__all__ = ["TrainConfig", "Trainer", "TrainingError", "export_checkpoint", "train", "BLOCK_FRAMES"]
