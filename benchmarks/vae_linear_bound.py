"""How far the tiny model's autoencoder is from a linear code of the same size.

    python benchmarks/vae_linear_bound.py --json benchmarks/results/vae_linear_bound.json

The tiny VAE keeps 48 numbers per 16x16 pixel patch (per frame for the first latent, per group of
four frames after it). A linear code of that size is PCA of the patches to 48 components. This
script measures, on procedural frames (PCA fitted on training seeds >= 100000, measured on held-out
seeds 0..N):

1. PCA-48 reconstruction of single frames, of groups of four consecutive frames, and of still
   groups (one frame four times): what a linear encoder/decoder of the latent's size reaches;
2. the shipped VAE's reconstruction of the same single frames (``--checkpoint``: another one's,
   e.g. a tiny-8x run's);
3. a linear decoder (ridge regression from each latent and its 3x3 neighbours to the patch)
   fitted on that VAE's latents: how much of the frame its encoder keeps;
4. PCA at two other latent sizes, for comparison: 48 numbers per 8x8 patch (a Wan2.2-style VAE
   with one downsampling stage fewer) and 16 per 8x8 patch (the Wan2.1 VAE's size);
5. the closed-form linear code a ``tiny-8x`` encoder computes exactly
   (:mod:`yume_env.train.linear_code`, ``yume-world train --linear-encoder``), fitted on the same
   training seeds and read back by least squares: single frames (coded as a still group, as the
   first latent of a stream is), 4-frame groups and still groups;
6. the best linear decoder the Wan decoder's layout allows on that VAE's latents (3x3 neighbours;
   a constant latent field must decode to a pattern that repeats every 2 pixels, see
   :func:`decoder_class_linear_psnr`): how far a decoder of this architecture can read the code;
7. with ``--candidates``: the same three PCA figures for candidate shapes of a new tiny preset
   (frame size, pixels per latent, numbers per latent), each on frames rendered at its own size,
   with the latent grid and the DiT tokens per latent frame (2x2 patches) it gives.

CPU only; about two minutes on two cores (``--candidates`` adds about three).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import report

from yume_env.model.pipeline import TINY_CHECKPOINT, load_checkpoint
from yume_env.train.data import rollout_episode
from yume_env.train.vae_train import decode_train, encode_train

P = 16  # pixels per latent, each way
K = 48  # numbers per latent

#: Candidate shapes for a tiny preset that can hold a scene: (name, (height, width), pixels per
#: latent each way, numbers per latent). 48 numbers is what the Wan2.2 VAE code supports (its latent
#: normalisation has 48 channels); 96 is listed to show what more channels would buy.
CANDIDATES: tuple[tuple[str, tuple[int, int], int, int], ...] = (
    ("tiny: 96x160, 16x, 48 ch", (96, 160), 16, 48),
    ("96x160, 8x, 48 ch", (96, 160), 8, 48),
    ("128x224, 8x, 48 ch", (128, 224), 8, 48),
    ("192x320, 16x, 48 ch", (192, 320), 16, 48),
    ("96x160, 16x, 96 ch", (96, 160), 16, 96),
    ("96x160, 8x, 96 ch", (96, 160), 8, 96),
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two arrays in [-1, 1]."""
    return float(10 * np.log10(4.0 / np.mean((np.clip(a, -1, 1) - b) ** 2)))


def frames_and_groups(
    seeds, stride: int = 7, resolution: tuple[int, int] = (96, 160)
) -> tuple[np.ndarray, np.ndarray]:
    """From 3-block episodes (each rendered once), in [-1, 1]: every ``stride``-th frame
    ``[N, H, W, 3]``, and the seven 4-frame groups after the first frame of every block
    ``[M, 4, H, W, 3]``."""
    frames, groups = [], []
    h, w = resolution
    for s in seeds:
        f = rollout_episode(s, num_blocks=3, resolution=resolution).frames  # [blocks, 29, H, W, 3]
        frames.append(f[:, ::stride].reshape(-1, h, w, 3))
        groups.append(f[:, 1:29].reshape(-1, 4, h, w, 3))
    return tuple(np.concatenate(x).astype(np.float32) / 127.5 - 1 for x in (frames, groups))


def patches(x: np.ndarray, p: int = P) -> np.ndarray:
    """``[N, (T,) H, W, 3]`` -> one row per ``p`` x ``p`` patch (all T frames of it)."""
    x = x if x.ndim == 5 else x[:, None]
    n, t, h, w, c = x.shape
    return x.reshape(n, t, h // p, p, w // p, p, c).transpose(0, 2, 4, 1, 3, 5, 6).reshape(-1, t * p * p * c)


def unpatch(rows: np.ndarray, shape: tuple[int, ...], p: int = P) -> np.ndarray:
    single = len(shape) == 4
    n, t, h, w, c = (shape[0], 1, *shape[1:]) if single else shape
    x = rows.reshape(n, h // p, w // p, t, p, p, c).transpose(0, 3, 1, 4, 2, 5, 6).reshape(n, t, h, w, c)
    return x[:, 0] if single else x


def pca_psnr(train: np.ndarray, test_sets: list[np.ndarray], p: int = P, k: int = K) -> list[float]:
    """PSNR of each test set coded with the ``k`` leading principal components of ``p`` x ``p``
    patches of ``train``."""
    rows = patches(train, p)
    mean = rows.mean(0)
    cov = np.cov((rows - mean).T)
    basis = np.linalg.eigh(cov)[1][:, ::-1][:, :k]
    out = []
    for test in test_sets:
        q = patches(test, p) - mean
        out.append(psnr(unpatch(q @ basis @ basis.T + mean, test.shape, p), test))
    return out


@torch.no_grad()
def vae_latents(vae, x: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Normalised latents ``[N, 48, h, w]`` of single frames and their reconstruction."""
    video = torch.from_numpy(x).permute(0, 3, 1, 2)[:, :, None]
    zs, recs = [], []
    for i in range(0, len(video), 16):
        z = encode_train(vae, video[i : i + 16])
        zs.append(z[:, :, 0])
        recs.append(decode_train(vae, z)[:, :, 0].permute(0, 2, 3, 1).numpy())
    return torch.cat(zs), np.concatenate(recs)


def neighbourhood(z: torch.Tensor) -> torch.Tensor:
    """Each latent with its 3x3 neighbours, one row per position: ``[N*h*w, 9*48]``."""
    zp = torch.nn.functional.pad(z, (1, 1, 1, 1), mode="replicate")
    n, c, h, w = z.shape
    f = torch.cat([zp[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)], 1)
    return f.permute(0, 2, 3, 1).reshape(-1, c * 9)


def linear_decoder_psnr(z_train, x_train, z_test, x_test, p: int = P) -> float:
    """PSNR of a ridge regression from each latent and its 3x3 neighbours to its ``p`` x ``p`` patch."""

    def design(z):  # neighbourhood rows plus a constant
        f = neighbourhood(z)
        return torch.cat([f, torch.ones(len(f), 1)], 1).double()

    a, b = design(z_train), design(z_test)
    y = torch.from_numpy(patches(x_train, p)).double()
    w = torch.linalg.solve(a.T @ a + 1e-3 * torch.eye(a.shape[1], dtype=torch.double), a.T @ y)
    return psnr(unpatch((b @ w).float().numpy(), x_test.shape, p), x_test)


def decoder_class_linear_psnr(z_train, x_train, z_test, x_test, p: int = P, period: int = 2) -> float:
    """PSNR of the best linear decoder the Wan decoder's layout allows, from each latent and its 3x3
    neighbours: like :func:`linear_decoder_psnr`, except that a constant latent field must decode to
    a field that repeats every ``period`` pixels.

    The decoder upsamples by nearest neighbour and then convolves, so it cannot tell the children of
    a latent apart except through their neighbours; only its last step (12 channels to 2x2 pixels)
    places numbers by position. Whatever its weights, a constant latent field gives a constant field
    on that last grid: a pattern that repeats every two pixels. Each pixel is a position-specific
    map of the neighbours' differences from the centre plus a map of the centre that is shared by
    all pixels at the same position modulo ``period``. Solved per class by eliminating the
    position-specific weights from the normal equations.
    """
    lam = 1e-3

    def parts(z):
        f = neighbourhood(z).double()
        c = z.shape[1]
        centre = f[:, 4 * c : 5 * c]
        diffs = torch.cat([f[:, k * c : (k + 1) * c] - centre for k in range(9) if k != 4], 1)
        return diffs, torch.cat([centre, torch.ones(len(f), 1, dtype=torch.double)], 1)

    d_tr, s_tr = parts(z_train)
    d_te, s_te = parts(z_test)
    y = torch.from_numpy(patches(x_train, p)).double().reshape(len(d_tr), p, p, 3)
    a = d_tr.T @ d_tr + lam * torch.eye(d_tr.shape[1], dtype=torch.double)
    b = d_tr.T @ s_tr
    c = s_tr.T @ s_tr + lam * torch.eye(s_tr.shape[1], dtype=torch.double)
    a_inv_b = torch.linalg.solve(a, b)
    out = torch.zeros(len(d_te), p, p, 3, dtype=torch.double)
    for ry in range(period):
        for rx in range(period):
            ys = y[:, ry::period, rx::period].reshape(len(d_tr), -1, 3)  # the class's pixels
            n = ys.shape[1]
            dy = torch.einsum("nf,npc->fpc", d_tr, ys)  # D^T y_p
            sy = torch.einsum("nf,npc->fpc", s_tr, ys)  # S^T y_p
            a_inv_dy = torch.linalg.solve(a, dy.reshape(len(a), -1)).reshape(dy.shape)
            lhs = n * (c - b.T @ a_inv_b)
            rhs = (sy - torch.einsum("fg,fpc->gpc", b, a_inv_dy)).sum(1)
            shared = torch.linalg.solve(lhs, rhs)  # [49, 3]
            w = a_inv_dy - torch.einsum("fg,gc->fc", a_inv_b, shared)[:, None]  # [384, n, 3]
            pred = torch.einsum("nf,fpc->npc", d_te, w) + (s_te @ shared)[:, None]
            out[:, ry::period, rx::period] = pred.reshape(len(d_te), p // period, p // period, 3)
    return psnr(unpatch(out.reshape(len(d_te), -1).float().numpy(), x_test.shape, p), x_test)


def linear_code_psnr(g_train: np.ndarray, x_test: np.ndarray, g_test: np.ndarray) -> dict[str, float]:
    """Item 5: the tiny-8x linear code's read-back PSNR on single frames, groups and still groups."""
    from yume_env.train.linear_code import fit_linear_code, linear_code_decode, linear_code_latents

    def video(g):  # [N, 4, H, W, 3] -> [N, 3, 4, H, W]
        return torch.from_numpy(g).permute(0, 4, 1, 2, 3)

    code = fit_linear_code(video(g_train))
    still = np.repeat(g_test[:, :1], 4, axis=1)
    singles = np.repeat(x_test[:, None], 4, axis=1)
    out = {}
    for name, g, first_frame_only in (
        ("single_frames_db", singles, True),
        ("four_frame_groups_db", g_test, False),
        ("still_groups_db", still, False),
    ):
        back = linear_code_decode(code, linear_code_latents(code, video(g))).permute(0, 2, 3, 4, 1).numpy()
        out[name] = psnr(back[:, 0], x_test) if first_frame_only else psnr(back, g)
    return out


def candidate_bounds(train_seeds, test_seeds, rendered: dict) -> dict:
    """PCA figures, latent grid and DiT tokens per latent frame of every shape in :data:`CANDIDATES`
    (``rendered`` maps a resolution to its ``(x_train, g_train, x_test, g_test)``; filled as needed)."""
    out = {}
    for name, (h, w), p, k in CANDIDATES:
        if (h, w) not in rendered:
            rendered[(h, w)] = frames_and_groups(train_seeds, resolution=(h, w)) + frames_and_groups(
                test_seeds, resolution=(h, w)
            )
        x_train, g_train, x_test, g_test = rendered[(h, w)]
        still = np.repeat(g_test[:, :1], 4, axis=1)
        single = pca_psnr(x_train, [x_test], p, k)
        groups = pca_psnr(g_train, [g_test, still], p, k)
        out[name] = {
            "resolution": [h, w],
            "pixels_per_latent": p,
            "numbers_per_latent": k,
            "latent_grid": [h // p, w // p],
            "dit_tokens_per_latent_frame": (h // p // 2) * (w // p // 2),
            "single_frames_db": single[0],
            "four_frame_groups_db": groups[0],
            "still_groups_db": groups[1],
        }
        print(f"{name}: " + ", ".join(f"{a} {b:.2f}" for a, b in out[name].items() if isinstance(b, float)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-seeds", type=int, default=30, help="training episodes (seeds 100000..)")
    p.add_argument("--test-seeds", type=int, default=8, help="held-out episodes (seeds 0..)")
    p.add_argument("--json", type=Path, help="write the numbers here")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=TINY_CHECKPOINT,
        help="whose VAE to measure in 2. and 3. (default: the shipped tiny checkpoint)",
    )
    p.add_argument(
        "--candidates", action="store_true", help="also measure the candidate shapes of a new tiny preset"
    )
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    train_seeds = range(100_000, 100_000 + args.train_seeds)
    test_seeds = range(args.test_seeds)
    x_train, g_train = frames_and_groups(train_seeds)
    x_test, g_test = frames_and_groups(test_seeds)
    still = np.repeat(g_test[:, :1], 4, axis=1)
    (pca_frames,) = pca_psnr(x_train, [x_test])
    pca_groups, pca_still = pca_psnr(g_train, [g_test, still])
    vae = load_checkpoint(args.checkpoint, "cpu").vae
    stride = vae.config.spatial_stride
    z_train, _ = vae_latents(vae, x_train)
    z_test, rec_test = vae_latents(vae, x_test)
    result = {
        "frames": {
            "train": len(x_train),
            "test": len(x_test),
            "groups_train": len(g_train),
            "groups_test": len(g_test),
        },
        "pca48_single_frames_db": pca_frames,
        "pca48_four_frame_groups_db": pca_groups,
        "pca48_still_groups_db": pca_still,
        "vae_single_frames_db": psnr(rec_test, x_test),
        "vae_checkpoint": str(args.checkpoint),
        "vae_pixels_per_latent": stride,
        "linear_decoder_on_vae_latents_db": linear_decoder_psnr(z_train, x_train, z_test, x_test, stride),
        "decoder_layout_linear_on_vae_latents_db": decoder_class_linear_psnr(
            z_train, x_train, z_test, x_test, stride
        ),
        "pca_other_latent_sizes": {
            f"{k} per {size}x{size}": dict(
                zip(
                    ("single_frames_db", "four_frame_groups_db", "still_groups_db"),
                    pca_psnr(x_train, [x_test], size, k) + pca_psnr(g_train, [g_test, still], size, k),
                )
            )
            for size, k in ((8, 48), (8, 16))
        },
        "tiny_8x_linear_code": linear_code_psnr(g_train, x_test, g_test),
    }
    if args.candidates:
        rendered = {(96, 160): (x_train, g_train, x_test, g_test)}
        result["candidate_shapes"] = candidate_bounds(train_seeds, test_seeds, rendered)
    result["seconds"] = time.perf_counter() - t0
    result["command"] = (
        "python benchmarks/vae_linear_bound.py"
        + (" --candidates" if args.candidates else "")
        + (f" --checkpoint {args.checkpoint}" if args.checkpoint != TINY_CHECKPOINT else "")
        + (f" --json {args.json}" if args.json else "")
    )
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
