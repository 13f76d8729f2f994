"""A closed-form start for the ``tiny-8x`` encoder: the best linear code its layers can compute.

Training the tiny VAEs by gradient descent on a 2-core CPU is slow where it matters most: after
6,287 steps the ``tiny-8x`` encoder kept information worth 22.4 dB (a linear decoder fitted on its
latents), while PCA of the same size reaches 28-32 dB. The encoder's layers, though, can compute
a linear code *exactly*: with every residual branch zeroed, what is left of the Wan2.2 encoder is
strided convolutions, fixed averaging shortcuts and one norm + SiLU in the head. This module fits
a two-level code on procedural video and writes it into those layers.

The code, for the ``tiny-8x`` shape (8x8 pixels and 4 frames per latent):

1. **Stage 0** (4x4 pixels, two frames): each frame's 4x4 block (48 numbers after the 2x2
   patchify) is projected on 24 directions: the 12 channel means over the 2x2 patch positions
   (the span of the stage's fixed averaging shortcut, so the shortcut can be folded in) and the 12
   leading principal components of what they leave. The two frames of a pair are averaged; the
   first frame of a stream (alone, as in Wan) gets the same code as a still pair.
2. **Stage 1** (8x8 pixels, four frames): the two pair codes of a 2x2 group of blocks (192
   numbers) are projected on their 48 leading principal components, whitened (unit variance, zero
   mean: the normalised latent the transformer consumes). The first latent of a stream gets the
   code of a still group of its frame, so a start image and a still world share one latent.
3. **Head**: the latent passes the head's RMS norm and SiLU unchanged to first order by riding on
   a large constant (``offset``) and being read against a reference channel that carries the
   constant alone; the remaining relative error is about ``2 sum(code) / (49 offset)``, under
   1e-3 for the default offset.

On held-out procedural seeds the code reconstructs (linear read-back) still groups and single
frames at about 29 dB and moving 4-frame groups at about 25 dB, against 22.4 dB for what the trained
encoder kept. The decoder has no exact linear inverse (nearest-neighbour upsampling cannot tell
the four children of a latent apart without their neighbours), so it is trained afterwards with
the encoder frozen (``yume-world train --decoder-steps``).

The construction needs exactly the ``tiny-8x`` encoder layout (widths 24 and 96, two
temporal-and-spatial downsampling stages); other shapes raise ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from yume_env.model.vae import LATENT_MEAN, LATENT_STD, WanVAE

__all__ = [
    "LinearCode",
    "LinearCodeEncoder",
    "check_layout",
    "fit_linear_code",
    "fit_linear_code_on_seeds",
    "install_linear_encoder",
    "linear_code_decode",
    "linear_code_latents",
    "refit_decoder_input",
]

_DTYPE = torch.float64


@dataclass(frozen=True)
class LinearCode:
    """The fitted two-level code (float64 tensors).

    Attributes:
        stage0: ``[24, 48]`` orthonormal rows: directions of a 4x4-pixel block (2x2 patch positions
            x 12 patch channels, index ``channel * 4 + row * 2 + col``).
        mean: ``[192]`` mean of the stage-1 vectors (two pair codes of a 2x2 group of blocks).
        basis: ``[192, 48]`` leading principal directions of the stage-1 vectors.
        scale: ``[48]`` standard deviation along each direction (the code is divided by it).
    """

    stage0: Tensor
    mean: Tensor
    basis: Tensor
    scale: Tensor

    def to(self, device: torch.device | str) -> LinearCode:
        """The same code with its tensors on ``device``."""
        return LinearCode(*(t.to(device) for t in (self.stage0, self.mean, self.basis, self.scale)))


def _patchify(video: Tensor) -> Tensor:
    """``[N, 3, T, H, W]`` -> ``[N, 12, T, H/2, W/2]`` with channel ``c*4 + w_off*2 + h_off``
    (the VAE's own patch order)."""
    n, c, t, h, w = video.shape
    x = video.reshape(n, c, t, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 6, 4, 2, 3, 5).reshape(n, c * 4, t, h // 2, w // 2)


def _blocks(x: Tensor) -> Tensor:
    """``[N, C, T, h, w]`` -> ``[N, T, h/2, w/2, C*4]``: each 2x2 block of positions, index
    ``channel * 4 + row * 2 + col`` (the order of a stride-2 convolution's 2x2 taps)."""
    n, c, t, h, w = x.shape
    x = x.reshape(n, c, t, h // 2, 2, w // 2, 2)
    return x.permute(0, 2, 3, 5, 1, 4, 6).reshape(n, t, h // 2, w // 2, c * 4)


def _stage0_average(device: torch.device | str | None = None) -> Tensor:
    """``[12, 48]``: each patch channel's mean over the 2x2 patch positions of a block (what the
    first stage's averaging shortcut computes per frame)."""
    avg = torch.zeros(12, 48, dtype=_DTYPE, device=device)
    for c in range(12):
        avg[c, c * 4 : c * 4 + 4] = 0.25
    return avg


def _pair_codes(video: Tensor, stage0: Tensor) -> Tensor:
    """Stage-0 codes of the frame pairs of 4-frame groups ``[N, 3, 4, H, W]``: ``[N, 24, 2, H/4, W/4]``."""
    f = _blocks(_patchify(video.to(_DTYPE)))  # [N, 4, H/4, W/4, 48]
    pairs = torch.stack([(f[:, 0] + f[:, 1]) / 2, (f[:, 2] + f[:, 3]) / 2], 1)
    return (pairs @ stage0.T).permute(0, 4, 1, 2, 3)


def _group_vectors(pairs: Tensor) -> Tensor:
    """``[N, 24, 2, h, w]`` pair codes -> ``[N, h/2, w/2, 192]`` stage-1 vectors (pair, channel,
    row, col)."""
    w = _blocks(pairs)  # [N, 2, h/2, w/2, 96]
    return torch.cat([w[:, 0], w[:, 1]], -1)


def _leading(rows: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    mean = rows.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((rows - mean).T))
    return mean, evecs[:, -k:].flip(1), evals[-k:].flip(0).clamp_min(1e-12)


def fit_linear_code(groups: Tensor, z_dim: int = 48) -> LinearCode:
    """Fit the code on 4-frame groups ``[N, 3, 4, H, W]`` in ``[-1, 1]`` (H, W multiples of 8).

    Use groups from moving and still video alike: the code is only as good as the data it saw.
    """
    if groups.ndim != 5 or groups.shape[1] != 3 or groups.shape[2] != 4:
        raise ValueError(f"groups: expected [N, 3, 4, H, W], got {tuple(groups.shape)}")
    if groups.shape[3] % 8 or groups.shape[4] % 8:
        raise ValueError(f"groups: H and W must be multiples of 8, got {tuple(groups.shape[3:])}")
    f = _blocks(_patchify(groups.to(_DTYPE))).reshape(-1, 48)
    avg = torch.linalg.qr(_stage0_average().T)[0].T  # orthonormal rows, same span
    rest = f - f @ avg.T @ avg
    _, rest_dirs, _ = _leading(rest, 12)
    stage0 = torch.cat([avg, rest_dirs.T])
    vectors = _group_vectors(_pair_codes(groups, stage0)).reshape(-1, 192)
    if len(vectors) <= 192:
        raise ValueError(f"groups: need more than 192 latent positions to fit the code, got {len(vectors)}")
    mean, basis, var = _leading(vectors, z_dim)
    return LinearCode(stage0, mean, basis, var.sqrt())


def fit_linear_code_on_seeds(seeds: range, resolution: tuple[int, int], z_dim: int = 48) -> LinearCode:
    """:func:`fit_linear_code` on the procedural world's 3-block episodes of ``seeds``: the seven
    4-frame groups after each block's first frame. What ``yume-world train --linear-encoder``
    installs; deterministic, so a run or a benchmark can fit the same code again from the seeds."""
    from yume_env.train.data import rollout_episode

    groups = []
    for seed in seeds:
        f = rollout_episode(seed, 3, resolution).frames[:, 1:]  # [3, 28, H, W, 3]
        v = torch.from_numpy(f.astype("float32") / 127.5 - 1).permute(0, 4, 1, 2, 3)
        groups.append(v.unflatten(2, (7, 4)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1))
    return fit_linear_code(torch.cat(groups), z_dim)


def linear_code_latents(code: LinearCode, groups: Tensor) -> Tensor:
    """The normalised latents the code gives 4-frame groups ``[N, 3, 4, H, W]``: ``[N, 48, H/8, W/8]``
    (a reference for the installed encoder, computed directly)."""
    v = _group_vectors(_pair_codes(groups, code.stage0))
    z = (v - code.mean) @ code.basis / code.scale
    return z.permute(0, 3, 1, 2).float()


class LinearCodeEncoder:
    """The code computed directly, with ``WanVAE.encode``'s interface for streams of ``1 + 4k`` frames.

    The installed encoder (:func:`install_linear_encoder`) computes the same latents through every
    VAE layer (0.002 rms apart in float32), about 200 times slower on a CPU: the trainer encodes its
    episodes with this once it has checked the two agree (``yume-world train`` on a run with the
    closed-form encoder).
    """

    def __init__(self, code: LinearCode):
        self.code = code

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """``[N, 3, 1 + 4k, H, W]`` in ``[-1, 1]`` -> normalised latents ``[N, 48, 1 + k, H/8, W/8]``;
        the first frame alone is coded as a still group of itself, as the installed encoder does."""
        if video.ndim != 5 or video.shape[1] != 3 or (video.shape[2] - 1) % 4:
            raise ValueError(f"video: expected [N, 3, 1 + 4k, H, W], got {tuple(video.shape)}")
        n, _, t, h, w = video.shape
        first = video[:, :, :1].expand(-1, -1, 4, -1, -1)
        groups = torch.cat([first, video[:, :, 1:]], 2).unflatten(2, (1 + (t - 1) // 4, 4))
        groups = groups.permute(0, 2, 1, 3, 4, 5).flatten(0, 1)  # [N * (1 + k), 3, 4, H, W]
        z = linear_code_latents(self.code.to(video.device), groups)
        return z.unflatten(0, (n, -1)).permute(0, 2, 1, 3, 4)


def linear_code_decode(code: LinearCode, latents: Tensor) -> Tensor:
    """Read latents ``[N, 48, h, w]`` back to 4-frame groups ``[N, 3, 4, 8h, 8w]`` by least squares
    (the linear read-back behind the figures in the module docstring)."""
    z = latents.to(_DTYPE).permute(0, 2, 3, 1)
    v = z * code.scale @ code.basis.T + code.mean  # [N, h, w, 192]
    n, h, w, _ = v.shape
    frames = []
    for half in (v[..., :96], v[..., 96:]):
        y = half.reshape(n, h, w, 24, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(n, 24, 2 * h, 2 * w)
        f = y.permute(0, 2, 3, 1) @ code.stage0  # [N, 2h, 2w, 48]: 2x2 patch positions x 12
        p = f.reshape(n, 2 * h, 2 * w, 12, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(n, 12, 4 * h, 4 * w)
        px = p.reshape(n, 3, 2, 2, 4 * h, 4 * w).permute(0, 1, 4, 3, 5, 2).reshape(n, 3, 8 * h, 8 * w)
        frames += [px, px]
    return torch.stack(frames, 2).float()


def check_layout(vae: WanVAE) -> None:
    """Raise ``ValueError`` unless ``vae`` has the ``tiny-8x`` encoder layout the code is written for."""
    cfg = vae.config
    if (
        cfg.dim != 24
        or tuple(cfg.dim_mult) != (1, 4, 4)
        or tuple(cfg.temperal_downsample[:2]) != (True, True)
        or cfg.z_dim != 48
    ):
        raise ValueError(
            "vae: the linear code needs the tiny-8x encoder (dim 24, dim_mult (1, 4, 4), temporal "
            f"downsampling in both stages, z_dim 48); got dim {cfg.dim}, dim_mult {tuple(cfg.dim_mult)}, "
            f"temperal_downsample {tuple(cfg.temperal_downsample)}, z_dim {cfg.z_dim}"
        )


def _zero_residual(block) -> None:
    conv = block.residual[6]
    conv.weight.zero_()
    conv.bias.zero_()


def _complement(rows: Tensor, dim: int) -> Tensor:
    """Orthonormal rows spanning the orthogonal complement of ``rows``' span in ``R^dim``."""
    q = torch.linalg.qr(rows.T, mode="complete")[0]
    return q[:, rows.shape[0] :].T[: dim - rows.shape[0]]


@torch.no_grad()
def install_linear_encoder(vae: WanVAE, code: LinearCode, offset: float = 1024.0, gain: float = 20.0) -> None:
    """Write ``code`` into the encoder of a ``tiny-8x`` VAE (the decoder is left as it is).

    Afterwards ``vae.encode`` returns :func:`linear_code_latents` (up to about 1e-3): every residual
    branch and the attention are zeroed, the strided convolutions compute the two stages with the
    fixed averaging shortcuts folded in, and the head reads the latent against a reference
    channel (see the module docstring). ``offset`` is the constant the latent rides on, ``gain`` the
    norm's gain (SiLU is linear to 1e-12 above ``1.4 * gain``).
    """
    check_layout(vae)
    enc = vae.encoder
    dev = vae.conv1.weight.device
    code = code.to(dev)
    for stage in enc.downsamples:
        for layer in stage.downsamples:
            if hasattr(layer, "residual"):
                _zero_residual(layer)
    for block in (enc.middle[0], enc.middle[2]):
        _zero_residual(block)
    enc.middle[1].proj.weight.zero_()
    enc.middle[1].proj.bias.zero_()

    # conv1: copy the 12 patch channels into channels 0-11 of the current frame
    enc.conv1.weight.zero_()
    enc.conv1.bias.zero_()
    for c in range(12):
        enc.conv1.weight[c, c, 2, 1, 1] = 1.0

    # stage 0: spatial S = E0 - avg/2, temporal taps Q/2, Q/2 with Q S = E0 - avg (so that pairs
    # get E0 f_mean and the lone first frame E0 f_0 once the shortcut's average is added)
    e0 = code.stage0
    avg = torch.zeros(24, 48, dtype=_DTYPE, device=dev)
    avg[:12] = _stage0_average(dev)
    spatial0 = e0 - avg / 2
    q = (e0 - avg) @ torch.linalg.pinv(spatial0)
    res0 = enc.downsamples[0].downsamples[-1]
    conv0 = res0.resample[1]
    conv0.weight.zero_()
    conv0.bias.zero_()
    conv0.weight[:, :12, :2, :2] = spatial0.reshape(24, 12, 2, 2).to(conv0.weight)
    res0.time_conv.weight.zero_()
    res0.time_conv.bias.zero_()
    res0.time_conv.weight[:, :, 1, 0, 0] = (q / 2).to(conv0.weight)
    res0.time_conv.weight[:, :, 2, 0, 0] = (q / 2).to(conv0.weight)

    # stage 1: its shortcut averages horizontal neighbours; output channel c*4 + i*2 + j holds
    # pair i (0: the earlier pair, the zero pad for a first latent), block row j, channel c.
    # Code channels are those of pair 0 (zero for a first latent), aux channels those of pair 1.
    code_idx = [c * 4 + j for c in range(24) for j in range(2)]
    aux_idx = [c * 4 + 2 + j for c in range(24) for j in range(2)]
    ref = aux_idx[0]
    pair_avg = torch.zeros(96, 96, dtype=_DTYPE, device=dev)  # shortcut output row -> the pair's 96-vector
    for c in range(24):
        for i in range(2):
            for j in range(2):
                o = c * 4 + i * 2 + j
                pair_avg[o, c * 4 + j * 2 : c * 4 + j * 2 + 2] = 0.5
    whiten = code.basis / code.scale  # [192, 48]
    za, zb = whiten[:96].T, whiten[96:].T  # [48, 96] each
    bias = -(code.mean @ whiten)  # [48]
    spatial1 = torch.zeros(96, 96, dtype=_DTYPE, device=dev)
    spatial1[code_idx] = za + zb  # a first latent: the code of a still group of its frame
    spatial1[ref] = -pair_avg[ref]  # cancels the shortcut: the reference channel stays empty
    others = [o for o in aux_idx if o != ref]
    spatial1[others] = _complement(torch.cat([za + zb, -pair_avg[ref : ref + 1]]), 96)
    spatial1_bias = torch.zeros(96, dtype=_DTYPE, device=dev)
    spatial1_bias[code_idx] = bias
    inverse = torch.linalg.inv(spatial1)
    tap_a = torch.zeros(96, 96, dtype=_DTYPE, device=dev)
    tap_b = torch.zeros(96, 96, dtype=_DTYPE, device=dev)
    tap_a[code_idx] = (za - pair_avg[code_idx]) @ inverse
    tap_b[code_idx] = zb @ inverse
    tap_b[ref] = -pair_avg[ref] @ inverse
    time_bias = torch.zeros(96, dtype=_DTYPE, device=dev)
    time_bias[code_idx] = bias
    time_bias -= (tap_a + tap_b) @ spatial1_bias

    stage1 = enc.downsamples[1].downsamples
    short = stage1[0].shortcut
    short.weight.zero_()
    short.bias.zero_()
    for c in range(24):
        short.weight[c, c, 0, 0, 0] = 1.0
    res1 = stage1[-1]
    conv1 = res1.resample[1]
    conv1.weight.zero_()
    conv1.bias.copy_(spatial1_bias.to(conv1.bias))
    conv1.weight[:, :24, :2, :2] = spatial1.reshape(96, 24, 2, 2).to(conv1.weight)
    res1.time_conv.weight.zero_()
    res1.time_conv.weight[:, :, 1, 0, 0] = tap_a.to(conv1.weight)
    res1.time_conv.weight[:, :, 2, 0, 0] = tap_b.to(conv1.weight)
    res1.time_conv.bias.copy_(time_bias.to(conv1.bias))

    # stage 2 doubles (identity blocks plus an identity shortcut); the middle adds the offset
    lift = enc.middle[0].residual[6]
    lift.bias[code_idx] = offset
    lift.bias[ref] = offset

    # head: norm with gain on code + reference channels only, then code = (a_c - a_ref) * scale
    norm, _, head = enc.head
    norm.gamma.zero_()
    norm.gamma[code_idx] = gain
    norm.gamma[ref] = gain
    # a_c - a_ref = sqrt(96) gain 2 code_c / n and n = sqrt(49) offset to first order
    read = math.sqrt(49.0) * offset / (2.0 * math.sqrt(96.0) * gain)
    head.weight.zero_()
    head.bias.zero_()
    for k, o in enumerate(code_idx):
        v = LATENT_STD[k] * read
        head.weight[k, o, 2, 1, 1] = v
        head.weight[k, ref, 2, 1, 1] = -head.weight[k, o, 2, 1, 1]  # exact: the offset cancels in any dtype
        head.bias[k] = LATENT_MEAN[k]
    vae.conv1.weight.zero_()
    vae.conv1.bias.zero_()
    for k in range(96):
        vae.conv1.weight[k, k, 0, 0, 0] = 1.0


@torch.no_grad()
def refit_decoder_input(vae: WanVAE, old: WanVAE, clips: Tensor) -> float:
    """Let ``vae``'s decoder (trained on ``old``'s latents) start from the new encoder's latents.

    Fits ``old``'s raw latents as a linear function of ``vae``'s on ``clips`` ``[N, 3, F, H, W]``
    (least squares, per latent position) and folds that map into ``vae.conv2``, the 1x1
    convolution in front of the decoder. Returns the fit's R^2 (1: the decoder sees exactly its old
    latents). The decoder itself is not changed.
    """
    new = vae.encode_unnormalized(clips).permute(0, 2, 3, 4, 1).reshape(-1, vae.config.z_dim)
    target = old.encode_unnormalized(clips).permute(0, 2, 3, 4, 1).reshape(-1, vae.config.z_dim)
    x = torch.cat([new, torch.ones(len(new), 1, device=new.device)], 1).to(_DTYPE)
    y = target.to(_DTYPE)
    eye = torch.eye(x.shape[1], dtype=_DTYPE, device=x.device)
    sol = torch.linalg.solve(x.T @ x + 1e-6 * eye, x.T @ y)  # [49, 48]
    r2 = 1.0 - float(((x @ sol - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
    w2 = vae.conv2.weight[:, :, 0, 0, 0].to(_DTYPE)
    b2 = vae.conv2.bias.to(_DTYPE)
    vae.conv2.weight[:, :, 0, 0, 0] = (w2 @ sol[:-1].T).to(vae.conv2.weight)
    vae.conv2.bias.copy_((w2 @ sol[-1] + b2).to(vae.conv2.bias))
    return r2
