"""How much is left after the CAE? Bounds and alternatives for the stages that follow it.

Each check answers one question about the shipped pipeline on the first ``--images`` photos
of ``--dataset`` (docs/experiments.md, by lever):

  entropy  latent bytes of the lossless JPEG 2000 mosaic against the per-component order-0
           entropy of the same integers and their entropy given two causal neighbours (ideal
           figures, with no adaptation or side cost): what a better entropy coder could save.
  layout   latent bytes of other mosaic layouts (one column, the square grid caec used before,
           components interleaved g x g per latent position); the integers are the same, so
           only the rate moves.
  ceiling  PSNR of the member that serves the finest steps as the step shrinks to almost
           nothing: the network's reconstruction ceiling.
  decoder  whose ceiling that is: PSNR of that member's finest decoder from the encoder's
           unquantized latent, and from a latent optimized for the decoder alone (Adam on
           the pixel error, ``--decoder-iterations``): what a perfect encoder would reach.
  pca      BD-rate against the stored rotation of: an oracle per-image PCA (its basis is not
           charged: it would cost M x M coefficients per file), ``--clusters`` stored bases
           with one chosen per 128x128 tile by a rate proxy (fitted on ``--train`` photos,
           log2(K) bits a tile charged), and keeping only the first N components.
  hybrid   the CAE at a low rate plus its pixel residual coded by OpenJPEG, against OpenJPEG
           alone and the CAE alone, at equal file size.
  deadzone BD-rate of other encoder dead zones against the shipped one, for each member's
           qualities on their own (a family could give each member its own).
  isolated BD-rate against the shipped quantizer of a context-adaptive dead zone: a +-1 with no
           non-zero among its 8 neighbours in its component (what EBCOT codes dearest: it
           breaks a run of zeros) is zeroed when its magnitude is below 0.5 + dead zone + E
           steps, for each E of ``--isolated``; qualities 1-10 of the whole model.
  chroma   how caec and OpenJPEG (at caec's file size) split their error between Y, Cb and Cr,
           and the BD-rate of low-passing the chroma before the encoder (down and up by each
           factor of ``--chroma-factors``, as 4:2:0 would) against the shipped encoder.
  components
           one step per component: how much the RGB output of each member's decoder moves per
           unit of each PCA component (finite differences around quantized latents of
           ``--train`` photos, at the step of the member's middle quality), then the BD-rate
           against equal steps of steps scaled by (s_mean / s_k) ** (alpha / 2) for each alpha
           of ``--alphas`` (alpha 1 is the high-rate optimum, s_mean the geometric mean);
           qualities 1-10, decoded by the script's own tile decoder (the file cannot say the
           scales, which would be model data).

Usage: python research/headroom.py --checks entropy,layout,ceiling,pca,hybrid,deadzone --images 8
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cae_codec import container, contract
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.cae import payload
from cae_codec.cae.codec import (
    STEP_KNOB,
    CaePcaJ2kCodec,
    Codec,
    FamilyAnalysis,
    FamilyCodec,
    plain_codecs,
    stored_components,
)
from cae_codec.cae.refine import frozen_network, tile_targets
from cae_codec.errors import CaecError
from cae_codec.evaluate.bdrate import bd_rate
from cae_codec.evaluate.classic import Jpeg2000, largest_within
from cae_codec.evaluate.metrics import ms_ssim_db, ms_ssim_rgb, psnr_rgb
from cae_codec.evaluate.report import bd_rate_text
from cae_codec.imageio import open_image
from cae_codec.ratecontrol import MemoEncoder
from cae_codec.stages import j2k, quant
from cae_codec.stages.color import rgb_to_ycbcr, ycbcr_to_rgb
from cae_codec.stages.tiling import TILE, tile_origins
from cae_codec.trainkit import list_images

QUALITIES = range(quant.QUALITY_MIN, quant.QUALITY_MAX + 1)
CHECKS = ("entropy", "layout", "ceiling", "decoder", "pca", "hybrid", "deadzone", "isolated", "components", "chroma")


def member_at(codec: Codec, quality: int) -> tuple[CaePcaJ2kCodec, float]:
    """The model that writes ``quality``'s files and the step it quantizes with."""
    step = quant.step_for_quality(quality)
    return codec.at(step) if isinstance(codec, FamilyCodec) else (codec, step)


def middle_step(codec: Codec, plain: CaePcaJ2kCodec) -> float:
    """The step ``plain`` quantizes with at the middle of the qualities it serves."""
    own = [q for q in QUALITIES if member_at(codec, q)[0] is plain]
    return member_at(codec, own[len(own) // 2])[1]


def rd_point(image: np.ndarray, nbytes: int, rec: np.ndarray) -> tuple[float, float, float]:
    """bpp, PSNR-RGB and MS-SSIM-RGB in dB of a decoded file of ``nbytes``."""
    bpp = 8 * nbytes / (image.shape[0] * image.shape[1])
    return bpp, psnr_rgb(image, rec), ms_ssim_db(ms_ssim_rgb(image, rec))


def quantized(plain: CaePcaJ2kCodec, z: np.ndarray, step: float) -> np.ndarray:
    """The components the file stores, quantized."""
    k = stored_components(z, step, plain.deadzone)
    return np.stack([quant.quantize(plane, step, plain.deadzone) for plane in z[:k]]) if k else z[:0].astype(np.int16)


def latent_bytes(q: np.ndarray, cols: int) -> int:
    return len(j2k.encode_plane(j2k.to_mosaic(q, cols), 0)) if len(q) else 0


def entropy_bits(values: np.ndarray) -> float:
    _, counts = np.unique(values, return_counts=True)
    return float(-(counts * np.log2(counts / counts.sum())).sum())


def context_entropy_bits(plane: np.ndarray) -> float:
    """Entropy given how many of the upper and left neighbours are non-zero (0, 1 or 2)."""
    padded = np.pad(plane != 0, 1).astype(np.int8)
    context = padded[:-2, 1:-1] + padded[1:-1, :-2]
    return sum(entropy_bits(plane[context == c]) for c in range(3) if np.any(context == c))


def interleaved(q: np.ndarray, g: int) -> np.ndarray:
    """Groups of g*g consecutive components as one (h*g, w*g) plane, component i of a group at
    (y*g + i // g, x*g + i % g): neighbours in the mosaic are other components at the same place."""
    k, h, w = q.shape
    n = -(-k // (g * g)) * g * g
    full = np.zeros((n, h, w), q.dtype)
    full[:k] = q
    return full.reshape(n // (g * g), g, g, h, w).transpose(0, 3, 1, 4, 2).reshape(n // (g * g), h * g, w * g)


def check_entropy(codec: Codec, photos: Sequence[FamilyAnalysis], qualities: Sequence[int]) -> None:
    print("| quality | JPEG 2000 (bpp) | order-0 per component | causal context | JPEG 2000 over context |")
    print("|---|---|---|---|---|")
    for quality in qualities:
        plain, step = member_at(codec, quality)
        j2k_bits = h0 = hc = pixels = 0.0
        for photo in photos:
            q = quantized(plain, photo.of(plain).z, step)
            j2k_bits += 8 * latent_bytes(q, j2k.mosaic_columns(len(q), *q.shape[1:]))
            h0 += sum(entropy_bits(plane) for plane in q)
            hc += sum(context_entropy_bits(plane) for plane in q)
            pixels += photo.height * photo.width
        print(
            f"| {quality} | {j2k_bits / pixels:.3f} | {h0 / pixels:.3f} | {hc / pixels:.3f} | "
            f"{100 * (j2k_bits / hc - 1):+.1f}% |",
            flush=True,
        )


def check_layout(codec: Codec, photos: Sequence[FamilyAnalysis], qualities: Sequence[int]) -> None:
    columns: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "shipped (code-block columns)": lambda q: j2k.to_mosaic(q, j2k.mosaic_columns(len(q), *q.shape[1:])),
        "one column": lambda q: j2k.to_mosaic(q, 1),
        "square grid": lambda q: j2k.to_mosaic(q, _square_columns(*q.shape)),
    }
    for g in (2, 4):
        columns[f"interleaved {g}x{g}"] = lambda q, g=g: columns["shipped (code-block columns)"](interleaved(q, g))
    names = list(columns)
    print(
        "| quality | shipped latent (bpp) | "
        + " | ".join(names[1:])
        + " | JPEG 2000 ms/image, "
        + " / ".join(names)
        + " |"
    )
    print("|---" * (len(names) + 2) + "|")
    for quality in qualities:
        plain, step = member_at(codec, quality)
        total = dict.fromkeys(names, 0)
        seconds = dict.fromkeys(names, 0.0)
        pixels = 0
        for photo in photos:
            q = quantized(plain, photo.of(plain).z, step)
            for name, layout in columns.items():
                mosaic = layout(q)
                best = math.inf
                for _ in range(3):  # encode + decode, the fastest of three
                    t = time.perf_counter()
                    data = j2k.encode_plane(mosaic, 0) if len(q) else b""
                    if data:
                        j2k.decode_plane(data, mosaic.shape, np.dtype(np.int16), "latent")
                    best = min(best, time.perf_counter() - t)
                total[name] += len(data)
                seconds[name] += best
            pixels += photo.height * photo.width
        base = total[names[0]]
        others = " | ".join(f"{100 * (total[n] / base - 1):+.2f}%" for n in names[1:])
        times = " / ".join(f"{1000 * seconds[n] / len(photos):.1f}" for n in names)
        print(f"| {quality} | {8 * base / pixels:.3f} | {others} | {times} |", flush=True)


def _square_columns(k: int, h: int, w: int) -> int:
    # the grid caec wrote before the code-block rule: as square as possible in samples
    return min(range(1, k + 1), key=lambda c: abs(math.log(c * w / (math.ceil(k / c) * h)))) if k else 0


def check_ceiling(codec: Codec, photos: Sequence[FamilyAnalysis], steps: Sequence[float]) -> None:
    plain, _ = member_at(codec, quant.QUALITY_MAX)
    print(f"`{plain.name}`, the member of the finest steps")
    print("| step | bpp | PSNR-RGB (dB) |")
    print("|---|---|---|")
    for step in steps:
        bpp, psnr = [], []
        for photo in photos:
            data = plain.pack(photo.of(plain), step)
            bpp.append(8 * len(data) / (photo.height * photo.width))
            psnr.append(psnr_rgb(photo.image, plain.decode(container.parse(data))))
        print(f"| {step:g} | {np.mean(bpp):.3f} | {np.mean(psnr):.2f} |", flush=True)


def check_decoder(codec: Codec, photos: Sequence[FamilyAnalysis], iterations: int, lr: float) -> None:
    plain, _ = member_at(codec, quant.QUALITY_MAX)
    net = plain.net
    decoder = net.decoders()[0]  # type: ignore[operator]  # band 0: the finest steps
    s = plain.model.stride
    t = TILE // s
    marks = sorted({0, *range(0, iterations + 1, max(1, iterations // 4)), iterations})
    print(f"`{plain.name}`, its finest decoder, unquantized latents; Adam lr {lr:g} on the pixel MSE")
    print("| photo | " + " | ".join(f"{n} iterations" for n in marks) + " |")
    print("|---|" + "---|" * len(marks))
    table: list[list[float]] = []
    for i, photo in enumerate(photos):
        a = photo.of(plain)
        origins = tile_origins(*a.padded)
        target, mask = tile_targets(photo.image, origins, 3, plain.device)
        z = torch.from_numpy(np.stack([a.z[:, y // s : y // s + t, x // s : x // s + t] for y, x in origins]))
        z.requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        row = []
        with frozen_network(net):
            for n in range(iterations + 1):
                y = torch.einsum("bkhw,mk->bmhw", z, plain.basis) + plain.mean.view(1, -1, 1, 1)
                x = ycbcr_to_rgb(decoder(y) + 0.5).clamp(0, 1)
                # float output, before 8-bit rounding; over the pixels inside the photo
                mse = (((x - target) ** 2) * mask).sum() / (3 * mask.sum())
                if n in marks:
                    row.append(10 * math.log10(1 / float(mse.detach())))
                opt.zero_grad(set_to_none=True)
                mse.backward()
                opt.step()
        table.append(row)
        print(f"| {i + 1} | " + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)
    print("| mean | " + " | ".join(f"{v:.2f}" for v in np.mean(table, axis=0)) + " |")


def to_tiles(y: np.ndarray, side: int) -> np.ndarray:
    """(M, H, W) latent -> (tiles, side*side positions, M), tiles in raster order."""
    m, h, w = y.shape
    return y.reshape(m, h // side, side, w // side, side).transpose(1, 3, 2, 4, 0).reshape(-1, side * side, m)


def from_tiles(t: np.ndarray, h: int, w: int, side: int) -> np.ndarray:
    m = t.shape[2]
    return t.reshape(h // side, w // side, side, side, m).transpose(4, 0, 2, 1, 3).reshape(m, h, w)


def centred_latent(z: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """Components in the stored basis -> the latent with the stored mean removed."""
    m, h, w = z.shape
    return (stored @ z.reshape(m, -1).astype(np.float64)).reshape(m, h, w)


def rate_proxy(tiles: np.ndarray, basis: np.ndarray, step: float) -> np.ndarray:
    """Per tile, a smooth stand-in for the bits of its coefficients in ``basis``."""
    coefficients = tiles @ basis
    return 0.5 * np.log2(1 + (coefficients / step) ** 2).sum(axis=(1, 2))


def principal_directions(vectors: np.ndarray) -> np.ndarray:
    _, vecs = np.linalg.eigh(vectors.T @ vectors / len(vectors))
    return vecs[:, ::-1].copy()


def fit_clustered_bases(tiles: np.ndarray, start: np.ndarray, k: int, step: float, seed: int = 0) -> list[np.ndarray]:
    """K bases: k-means on each tile's log energy profile, then alternate PCA per cluster and
    re-assignment of each tile to the basis of the lowest rate proxy."""
    rng = np.random.default_rng(seed)
    profile = np.log((tiles @ start) ** 2 + 1e-3).mean(axis=1)
    centres = profile[rng.choice(len(profile), k, replace=False)]
    for _ in range(10):
        labels = ((profile[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([profile[labels == c].mean(0) if np.any(labels == c) else centres[c] for c in range(k)])
    for _ in range(8):
        v = [tiles[labels == c].reshape(-1, tiles.shape[2]) for c in range(k)]
        bases = [principal_directions(vc) if len(vc) > 4 * tiles.shape[2] else start for vc in v]
        labels = np.stack([rate_proxy(tiles, b, step) for b in bases], axis=1).argmin(1)
    return bases


def synthesize(
    plain: CaePcaJ2kCodec,
    coefficients: np.ndarray,
    bases: Sequence[np.ndarray],
    labels: np.ndarray,
    step: float,
    height: int,
    width: int,
) -> np.ndarray:
    """Decode dequantized coefficients (M, H, W) whose tile t is in ``bases[labels[t]]``."""
    side = TILE // plain.model.stride
    m, h, w = coefficients.shape
    tiles = to_tiles(coefficients.astype(np.float64), side)
    mean = plain.mean.numpy().astype(np.float64)
    y = np.stack([tiles[t] @ bases[labels[t]].T for t in range(len(tiles))]) + mean
    y_t = torch.from_numpy(y.reshape(-1, side, side, m).transpose(0, 3, 1, 2).astype(np.float32).copy())
    with torch.inference_mode():
        x = ycbcr_to_rgb(plain.net.decode(y_t, float(np.float32(step)))).clamp(0, 1)  # type: ignore[operator]
    rgb = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    image = rgb.reshape(h // side, w // side, TILE, TILE, 3).transpose(0, 2, 1, 3, 4).reshape(h * TILE // side, -1, 3)
    return image[:height, :width]


def check_pca(
    codec: Codec,
    photos: Sequence[FamilyAnalysis],
    train: Sequence[FamilyAnalysis],
    keep: Sequence[int],
    clusters: Sequence[int],
) -> None:
    variants = ["stored rotation", "per-image PCA (oracle)"]
    variants += [f"{k} stored bases, one per tile" for k in clusters] + [f"first {n} components" for n in keep]
    curves: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    fitted: dict[tuple[str, int], list[np.ndarray]] = {}
    train_tiles: dict[str, np.ndarray] = {}  # per member, shared by every K
    for quality in QUALITIES:
        plain, step = member_at(codec, quality)
        side = TILE // plain.model.stride
        stored = plain.basis.numpy().astype(np.float64)
        for k in clusters:
            if (plain.name, k) not in fitted:  # one fit per member, at the step of its middle quality
                if plain.name not in train_tiles:
                    centred = [centred_latent(t.of(plain).z, stored) for t in train]
                    train_tiles[plain.name] = np.concatenate([to_tiles(c, side) for c in centred])
                fitted[(plain.name, k)] = fit_clustered_bases(
                    train_tiles[plain.name],
                    stored,
                    k,
                    middle_step(codec, plain),
                )
        points: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
        for photo in photos:
            a = photo.of(plain)
            m, h, w = a.z.shape
            centred = centred_latent(a.z, stored)
            tiles = to_tiles(centred, side)
            options: dict[str, tuple[list[np.ndarray], np.ndarray, float]] = {
                variants[0]: ([stored], np.zeros(len(tiles), int), 0.0),
                variants[1]: ([principal_directions(centred.reshape(m, -1).T)], np.zeros(len(tiles), int), 0.0),
            }
            for k in clusters:
                bases = fitted[(plain.name, k)]
                labels = np.stack([rate_proxy(tiles, b, step) for b in bases], axis=1).argmin(1)
                options[f"{k} stored bases, one per tile"] = (bases, labels, len(tiles) * math.log2(k))
            for n in keep:
                options[f"first {n} components"] = ([stored], np.zeros(len(tiles), int), 0.0)
            for name, (bases, labels, side_bits) in options.items():
                coefficients = np.stack([tiles[t] @ bases[labels[t]] for t in range(len(tiles))])
                z = from_tiles(coefficients, h, w, side).astype(np.float32)
                if name.startswith("first "):
                    z[int(name.split()[1]) :] = 0
                data = plain.pack(replace(a, z=z), step)
                q = container.parse(data)
                params = payload.params(q)
                zq = np.zeros_like(z)
                zq[: params.components] = quant.dequantize(payload.read_components(q, params, h, w), params.step)
                rec = synthesize(plain, zq, bases, labels, params.step, photo.height, photo.width)
                if name == variants[0]:  # the script's own decoder must be the codec's (batching may move 1 level)
                    assert np.abs(rec.astype(int) - plain.decode(q)).max() <= 1, "synthesize() is not the codec"
                bpp = (8 * len(data) + side_bits) / (photo.height * photo.width)
                points[name].append((bpp, psnr_rgb(photo.image, rec)))
        for name in variants:
            curves[name].append(tuple(np.mean(points[name], axis=0)))  # type: ignore[arg-type]
        print(
            f"quality {quality}: "
            + ", ".join(f"{n} {curves[n][-1][0]:.3f} bpp {curves[n][-1][1]:.2f} dB" for n in variants),
            flush=True,
        )
    base = np.array(curves[variants[0]])
    print("| variant | BD-rate against the stored rotation |")
    print("|---|---|")
    for name in variants[1:]:
        c = np.array(curves[name])
        print(f"| {name} | {bd_rate(base[:, 0], base[:, 1], c[:, 0], c[:, 1]):+.2f}% |")


def pack_for_bpp(pack: Callable[[float], bytes], height: int, width: int, bpp: float) -> bytes:
    """The largest file ``pack`` makes within ``bpp``: the search of `caec encode --bpp`."""
    return contract.within_budget(pack, STEP_KNOB, math.floor(bpp * height * width / 8), height, width, bpp)


def check_hybrid(
    codec: Codec, photos: Sequence[FamilyAnalysis], targets: Sequence[float], bases: Sequence[float]
) -> None:
    j2k_codec = Jpeg2000()
    rows: dict[tuple[float, str], list[float]] = {}
    for photo in photos:
        img, h, w = photo.image, photo.height, photo.width
        packer = codec.packer(img)
        for target in targets:
            budget = math.floor(target * h * w / 8)
            alone = largest_within(j2k_codec, MemoEncoder(j2k_codec.prepare(img)), budget)
            assert alone is not None
            rows.setdefault((target, "OpenJPEG"), []).append(psnr_rgb(img, alone[1]))
            cae = pack_for_bpp(packer, h, w, target)
            rows.setdefault((target, "caec"), []).append(psnr_rgb(img, codec.decode(container.parse(cae))))
            for base_bpp in (b for b in bases if b < target):
                base = pack_for_bpp(packer, h, w, base_bpp)
                base_rec = codec.decode(container.parse(base)).astype(np.int16)
                residual = np.clip(img - base_rec + 128, 0, 255).astype(np.uint8)
                found = largest_within(j2k_codec, MemoEncoder(j2k_codec.prepare(residual)), budget - len(base))
                if found is None:
                    continue
                rec = np.clip(base_rec + found[1].astype(np.int16) - 128, 0, 255).astype(np.uint8)
                rows.setdefault((target, f"caec {base_bpp:g} bpp + residual"), []).append(psnr_rgb(img, rec))
    print("| bpp | coding | PSNR-RGB (dB) | images |")
    print("|---|---|---|---|")
    for (target, name), values in rows.items():
        print(f"| {target:g} | {name} | {np.mean(values):.2f} | {len(values)} |")


def check_deadzone(codec: Codec, photos: Sequence[FamilyAnalysis], deadzones: Sequence[float]) -> None:
    curves: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for quality in QUALITIES:
        plain, step = member_at(codec, quality)
        shipped = plain.deadzone
        for deadzone in sorted({shipped, *deadzones}):
            plain.deadzone = deadzone
            try:
                points = []
                for photo in photos:
                    data = plain.pack(photo.of(plain), step)
                    rec = plain.decode(container.parse(data))
                    points.append((8 * len(data) / (photo.height * photo.width), psnr_rgb(photo.image, rec)))
            finally:
                plain.deadzone = shipped
            curves.setdefault((plain.name, deadzone), []).append(tuple(np.mean(points, axis=0)))  # type: ignore[arg-type]
    print("| member | dead zone | BD-rate against the shipped dead zone, on the member's qualities |")
    print("|---|---|---|")
    for (name, deadzone), curve in curves.items():
        plain = next(p for p in plain_codecs(codec) if p.name == name)
        base = np.array(curves[(name, plain.deadzone)])
        c = np.array(curve)
        print(f"| {name} | {deadzone:g} | {bd_rate(base[:, 0], base[:, 1], c[:, 0], c[:, 1]):+.2f}% |")


def zero_isolated_ones(plane: np.ndarray, step: float, deadzone: float, extra: float) -> np.ndarray:
    """``quant.quantize``, then every +-1 without a non-zero among its 8 neighbours set to zero
    where its magnitude is below 0.5 + deadzone + extra steps."""
    q = quant.quantize(plane, step, deadzone)
    nonzero = np.pad(q != 0, 1).astype(np.int8)
    h, w = q.shape
    neighbours = sum(nonzero[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    lone = (np.abs(q) == 1) & (neighbours == 1) & (np.abs(plane / np.float32(step)) < 0.5 + deadzone + extra)
    return np.where(lone, 0, q).astype(np.int16)


def check_isolated(codec: Codec, photos: Sequence[FamilyAnalysis], extras: Sequence[float]) -> None:
    curves: dict[float | None, list[tuple[float, float, float]]] = {}
    for quality in QUALITIES:
        plain, step = member_at(codec, quality)
        for extra in (None, *extras):
            if extra is not None:
                plain.quantize_plane = lambda z, s, e=extra, p=plain: zero_isolated_ones(z, s, p.deadzone, e)  # type: ignore[method-assign]
            try:
                points = []
                for photo in photos:
                    data = plain.pack(photo.of(plain), step)
                    points.append(rd_point(photo.image, len(data), plain.decode(container.parse(data))))
            finally:
                vars(plain).pop("quantize_plane", None)
            curves.setdefault(extra, []).append(tuple(np.mean(points, axis=0)))  # type: ignore[arg-type]
    base = np.array(curves[None])
    print("| isolated +-1 zeroed below (steps) | BD-rate PSNR-RGB | BD-rate MS-SSIM-RGB | bpp at quality 1 / 10 |")
    print("|---|---|---|---|")
    for extra, curve in curves.items():
        c = np.array(curve)
        label = "never (shipped)" if extra is None else f"0.5 + dead zone + {extra:g}"
        bd_p, bd_m = (bd_rate_text(base[:, 0], base[:, i], c[:, 0], c[:, i]) for i in (1, 2))
        print(f"| {label} | {bd_p} | {bd_m} | {c[0, 0]:.3f} / {c[-1, 0]:.3f} |")


def component_sensitivity(
    plain: CaePcaJ2kCodec, images: Sequence[np.ndarray], step: float, tiles_per_image: int = 4, eps: float = 0.05
) -> np.ndarray:
    """Mean squared change of the RGB output (in [0,1] units, per pixel and channel) per squared
    unit of each PCA component, measured by moving it eps * step around the quantized latent of
    ``tiles_per_image`` tiles of each image; one decoder pass per component and tile."""
    side = TILE // plain.model.stride
    m = plain.model.latent_channels
    total = np.zeros(m)
    count = 0
    for img in images:
        z = plain.analyse(img).z
        rows, cols = z.shape[1] // side, z.shape[2] // side
        for t in range(tiles_per_image):
            ty, tx = (3 * t) % rows, (5 * t) % cols  # spread over the photo, the same tiles every run
            tile = z[:, ty * side : (ty + 1) * side, tx * side : (tx + 1) * side]
            zq = torch.from_numpy(quant.dequantize(quant.quantize(tile, step, plain.deadzone), step))
            y0 = torch.einsum("khw,mk->mhw", zq, plain.basis)[None] + plain.mean.view(1, -1, 1, 1)
            with torch.inference_mode():
                x0 = ycbcr_to_rgb(plain.net.decode(y0, step))  # type: ignore[operator]
                for first in range(0, m, 48):
                    ks = range(first, min(m, first + 48))
                    moved = y0.repeat(len(ks), 1, 1, 1) + eps * step * plain.basis[:, list(ks)].T[:, :, None, None]
                    x = ycbcr_to_rgb(plain.net.decode(moved, step))  # type: ignore[operator]
                    total[first : first + len(ks)] += ((x - x0) ** 2).mean(dim=(1, 2, 3)).double().numpy()
            count += 1
    return total / count / (eps * step) ** 2


def check_components(
    codec: Codec, photos: Sequence[FamilyAnalysis], train: Sequence[np.ndarray], alphas: Sequence[float]
) -> None:
    members = {plain.name: plain for plain in (member_at(codec, q)[0] for q in QUALITIES)}
    gains: dict[str, np.ndarray] = {}
    print("| member | step | s_k / s_mean: min | 10% | median | 90% | max | first 4 | last 4 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, plain in members.items():
        step = middle_step(codec, plain)
        sens = component_sensitivity(plain, train, step)
        rel = sens / np.exp(np.mean(np.log(sens)))
        gains[name] = 1 / rel
        qs = np.quantile(rel, [0, 0.1, 0.5, 0.9, 1])
        print(
            f"| {name} | {step:.3g} | "
            + " | ".join(f"{v:.2f}" for v in qs)
            + f" | {', '.join(f'{v:.2f}' for v in rel[:4])} | {', '.join(f'{v:.2f}' for v in rel[-4:])} |"
        )
    curves: dict[float, list[tuple[float, float, float]]] = {}
    for quality in QUALITIES:
        plain, step = member_at(codec, quality)
        stored = plain.basis.numpy().astype(np.float64)
        for alpha in (0.0, *alphas):
            scale = (gains[plain.name] ** (alpha / 2)).astype(np.float32)[:, None, None]
            points = []
            for photo in photos:
                a = photo.of(plain)
                h, w = a.z.shape[1:]
                # quantizing z_k with step * scale_k is quantizing z_k / scale_k with step
                data = plain.pack(replace(a, z=a.z / scale), step)
                box = container.parse(data)
                params = payload.params(box)
                k = params.components
                zq = np.zeros_like(a.z)
                zq[:k] = quant.dequantize(payload.read_components(box, params, h, w), params.step) * scale[:k]
                labels = np.zeros(h * w // (TILE // plain.model.stride) ** 2, int)
                rec = synthesize(plain, zq, [stored], labels, params.step, photo.height, photo.width)
                points.append(rd_point(photo.image, len(data), rec))
            curves.setdefault(alpha, []).append(tuple(np.mean(points, axis=0)))  # type: ignore[arg-type]
    base = np.array(curves[0.0])
    print(
        "\n| steps scaled by (s_mean / s_k) ** (alpha / 2) | BD-rate PSNR-RGB | BD-rate MS-SSIM-RGB "
        "| bpp at quality 1 / 10 |"
    )
    print("|---|---|---|---|")
    for alpha, curve in curves.items():
        c = np.array(curve)
        bd_p, bd_m = (bd_rate_text(base[:, 0], base[:, i], c[:, 0], c[:, i]) for i in (1, 2))
        label = "alpha 0 (equal steps, shipped)" if alpha == 0 else f"alpha {alpha:g}"
        print(f"| {label} | {bd_p} | {bd_m} | {c[0, 0]:.3f} / {c[-1, 0]:.3f} |")


def ycbcr_planes(img: np.ndarray) -> np.ndarray:
    """(3, H, W) float64 YCbCr in 8-bit units of an RGB uint8 image, the codec's conversion."""
    rgb = torch.from_numpy(img).permute(2, 0, 1).double() / 255.0
    return rgb_to_ycbcr(rgb).numpy() * 255.0


def chroma_lowpassed(img: np.ndarray, factor: int) -> np.ndarray:
    """``img`` with Cb and Cr averaged over factor x factor blocks and bilinearly brought back to
    full size (what 4:2:0 keeps, for factor 2), Y untouched; RGB uint8 again."""
    rgb = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0
    ycc = rgb_to_ycbcr(rgb)
    h, w = img.shape[:2]
    small = torch.nn.functional.avg_pool2d(ycc[:, 1:], factor, ceil_mode=True)
    ycc[:, 1:] = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    out = ycbcr_to_rgb(ycc).clamp(0, 1)[0].permute(1, 2, 0) * 255.0
    return out.round().to(torch.uint8).numpy()


def check_chroma(codec: Codec, photos: Sequence[FamilyAnalysis], factors: Sequence[int]) -> None:
    j2k_codec = Jpeg2000()
    split: dict[tuple[int, str], list[np.ndarray]] = {}
    curves: dict[int, list[tuple[float, float]]] = {}
    lowpassed = {f: [FamilyAnalysis(chroma_lowpassed(p.image, f)) for p in photos] for f in factors}
    references = [ycbcr_planes(p.image) for p in photos]
    for quality in QUALITIES:
        step = quant.step_for_quality(quality)
        points: dict[int, list[tuple[float, float]]] = {}
        for i, photo in enumerate(photos):
            img, px = photo.image, photo.height * photo.width
            data = codec.pack(photo, step, quality)  # type: ignore[arg-type]
            rec = codec.decode(container.parse(data))
            points.setdefault(1, []).append((8 * len(data) / px, psnr_rgb(img, rec)))
            if quality in (2, 5, 8):
                j2k = largest_within(j2k_codec, MemoEncoder(j2k_codec.prepare(img)), len(data))
                assert j2k is not None
                for name, out in (("caec", rec), ("OpenJPEG", j2k[1])):
                    mse = ((ycbcr_planes(out) - references[i]) ** 2).mean(axis=(1, 2))
                    split.setdefault((quality, name), []).append(np.append(mse, 8 * len(data) / px))
            for f in factors:
                data = codec.pack(lowpassed[f][i], step, quality)  # type: ignore[arg-type]
                rec = codec.decode(container.parse(data))
                points.setdefault(f, []).append((8 * len(data) / px, psnr_rgb(img, rec)))
        for f, pts in points.items():
            curves.setdefault(f, []).append(tuple(np.mean(pts, axis=0)))  # type: ignore[arg-type]
    print("| quality | coding | bpp | MSE Y | MSE Cb | MSE Cr | chroma share of the YCbCr error |")
    print("|---|---|---|---|---|---|---|")
    for (quality, name), rows in split.items():
        y, cb, cr, bpp = np.mean(rows, axis=0)
        print(f"| {quality} | {name} | {bpp:.3f} | {y:.2f} | {cb:.2f} | {cr:.2f} | {(cb + cr) / (y + cb + cr):.0%} |")
    base = np.array(curves[1])
    print("\n| chroma before the encoder | BD-rate PSNR-RGB (against the original photo) | bpp at quality 1 / 10 |")
    print("|---|---|---|")
    for f, curve in curves.items():
        c = np.array(curve)
        label = "as is (shipped)" if f == 1 else f"averaged over {f}x{f} and interpolated back"
        print(
            f"| {label} | {bd_rate_text(base[:, 0], base[:, 1], c[:, 0], c[:, 1])} | {c[0, 0]:.3f} / {c[-1, 0]:.3f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--checks", default=",".join(CHECKS))
    ap.add_argument("--qualities", default="1,3,5,7,9", help="for entropy and layout")
    ap.add_argument("--steps", default="0.354,0.25,0.177,0.125,0.088,0.0625,0.03", help="for ceiling (member steps)")
    ap.add_argument("--decoder-iterations", type=int, default=200, help="for decoder: Adam steps")
    ap.add_argument("--decoder-lr", type=float, default=0.01, help="for decoder: Adam's step (latent units)")
    ap.add_argument("--keep", default="128,96,64", help="for pca: components kept")
    ap.add_argument("--clusters", default="4,16", help="for pca: numbers of stored bases ('' for none)")
    ap.add_argument("--train", type=Path, default=Path("../shared/data/train"), help="for pca: photos to fit bases on")
    ap.add_argument("--train-images", type=int, default=190)
    ap.add_argument("--targets", default="0.5,1,1.5,2", help="for hybrid: total bpp")
    ap.add_argument("--bases", default="0.25,0.4,0.6,0.9", help="for hybrid: bpp of the CAE layer")
    ap.add_argument("--deadzones", default="0.06,0.14", help="for deadzone: dead zones besides the shipped one")
    ap.add_argument("--isolated", default="0.15,0.3,0.6", help="for isolated: E of each variant (steps)")
    ap.add_argument("--alphas", default="0.25,0.5,1", help="for components: exponents of the step scales")
    ap.add_argument("--sensitivity-images", type=int, default=6, help="for components: --train photos measured")
    ap.add_argument("--chroma-factors", default="2", help="for chroma: low-pass factors of Cb and Cr")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    checks = args.checks.split(",")
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:  # before any check runs: some take many minutes
        raise SystemExit(f"headroom: unknown check {unknown[0]!r} (choose from {', '.join(CHECKS)})")
    # every list of numbers is read before any check runs: a typo must not cost a long check first
    for option, kind in LIST_OPTIONS.items():
        text = getattr(args, option)
        try:
            setattr(args, option, [kind(v) for v in text.split(",") if v])
        except ValueError:
            flag = "--" + option.replace("_", "-")
            raise SystemExit(f"headroom: {flag} {text!r}: expected {kind.__name__}s separated by commas") from None
    torch.set_num_threads(args.threads)
    try:
        run(args, checks)
    except CaecError as e:
        raise SystemExit(f"headroom: {e}") from None


# the options that take comma-separated numbers, and of which kind
LIST_OPTIONS: dict[str, type] = {
    "qualities": int,
    "steps": float,
    "keep": int,
    "clusters": int,
    "targets": float,
    "bases": float,
    "deadzones": float,
    "isolated": float,
    "alphas": float,
    "chroma_factors": int,
}


def run(args: argparse.Namespace, checks: Sequence[str]) -> None:
    """The checks, in order; the list options are already numbers (main)."""
    codec = get_codec(args.model, "cpu")
    # each photo keeps what each model's encoder made of it, for every check and quality
    photos = [FamilyAnalysis(open_image(f)[:, :, :3]) for f in list_images(args.dataset)[: args.images]]
    for check in checks:
        print(f"\n## {check}: {args.model}, {len(photos)} images of {args.dataset}\n", flush=True)
        if check == "entropy":
            check_entropy(codec, photos, args.qualities)
        elif check == "layout":
            check_layout(codec, photos, args.qualities)
        elif check == "ceiling":
            check_ceiling(codec, photos, args.steps)
        elif check == "decoder":
            check_decoder(codec, photos, args.decoder_iterations, args.decoder_lr)
        elif check == "pca":
            files = list_images(args.train) if args.clusters else []
            every = max(1, len(files) // args.train_images)
            train = [FamilyAnalysis(open_image(f)[:, :, :3]) for f in files[::every][: args.train_images]]
            check_pca(codec, photos, train, args.keep, args.clusters)
        elif check == "deadzone":
            check_deadzone(codec, photos, args.deadzones)
        elif check == "isolated":
            check_isolated(codec, photos, args.isolated)
        elif check == "chroma":
            check_chroma(codec, photos, args.chroma_factors)
        elif check == "components":
            train = [open_image(f)[:, :, :3] for f in list_images(args.train)[: args.sensitivity_images]]
            check_components(codec, photos, train, args.alphas)
        else:
            check_hybrid(codec, photos, args.targets, args.bases)


if __name__ == "__main__":
    main()
