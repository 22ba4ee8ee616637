"""Measure the codec's CPU-side design levers on Kodak, one at a time, against JPEG 2000.

Each variant runs the shipped pipeline with one thing changed and reports BD-rate (PSNR-RGB
and MS-SSIM-RGB) against OpenJPEG measured in the same run, plus CPU encode+decode time.

The anchor is matched per image: for every caec file, OpenJPEG is bisected to the largest
file not above it on the same image, and both are averaged over the same per-image rates.
(An anchor swept with one OpenJPEG setting for all images, as this script did before,
averages a different rate allocation across images and flattered caec by about 1.5 dB.)
Usage: python research/experiments.py --model cae-gdn-v1 --images 8 --out docs/experiments.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import get_codec
from cae_codec.cae.codec import CaePcaJ2kCodec, plain_codecs
from cae_codec.evaluate.bdrate import bd_rate
from cae_codec.evaluate.classic import Jpeg2000, largest_within
from cae_codec.evaluate.metrics import ms_ssim_db, ms_ssim_rgb, psnr_rgb
from cae_codec.evaluate.report import rewrite_marked
from cae_codec.imageio import open_image
from cae_codec.ratecontrol import MemoEncoder
from cae_codec.stages import quant

Variant = Callable[[CaePcaJ2kCodec], None]
Decode = Callable[[bytes], np.ndarray]


def _levels(n: int) -> Variant:
    def apply(codec: CaePcaJ2kCodec) -> None:
        codec.latent_levels = n

    return apply


def _deadzone(d: float) -> Variant:
    def apply(codec: CaePcaJ2kCodec) -> None:
        codec.deadzone = d

    return apply


def _no_pca(codec: CaePcaJ2kCodec) -> None:
    # identity rotation: code the CAE's own feature maps
    m = codec.model.latent_channels
    codec.basis = torch.eye(m, device=codec.device)
    codec.mean = torch.zeros(m, device=codec.device)


def _encode_options(name: str) -> dict[str, int]:
    """Options of ``codec.encode`` that a variant sets: ``refine-N`` refines the latent N times."""
    m = re.fullmatch(r"refine-(\d+)", name)
    return {"refine": int(m.group(1))} if m else {}


VARIANTS: dict[str, Variant] = {
    "shipped": lambda c: None,
    "j2k-levels-1": _levels(1),
    "j2k-levels-3": _levels(3),
    "j2k-levels-5": _levels(5),
    "no-pca": _no_pca,
    "deadzone-0": _deadzone(0.0),
    "deadzone-0.05": _deadzone(0.05),
    "deadzone-0.1": _deadzone(0.1),
    "deadzone-0.15": _deadzone(0.15),
    "deadzone-0.2": _deadzone(0.2),
    "deadzone-0.3": _deadzone(0.3),
}


def measure(
    images: list[np.ndarray],
    qualities: list[int],
    encode: Callable[[np.ndarray, int], bytes],
    decode: Decode,
    anchors: list[MemoEncoder],
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Mean bpp, PSNR-RGB, MS-SSIM-RGB and encode+decode seconds per quality over the images,
    for caec and for OpenJPEG matched per image to caec's file sizes."""
    keys = ("bpp", "psnr-rgb", "ms-ssim-rgb", "seconds")
    out: dict[str, list[float]] = {k: [] for k in keys}
    anchor: dict[str, list[float]] = {k: [] for k in keys[:3]}
    j2k = Jpeg2000()
    for q in qualities:
        per: dict[str, list[float]] = {k: [] for k in keys}
        per_a: dict[str, list[float]] = {k: [] for k in keys[:3]}
        for img, memo in zip(images, anchors, strict=True):
            px = img.shape[0] * img.shape[1]
            t0 = time.perf_counter()
            data = encode(img, q)
            rec = decode(data)
            per["seconds"].append(time.perf_counter() - t0)
            per["bpp"].append(8 * len(data) / px)
            per["psnr-rgb"].append(psnr_rgb(img, rec))
            per["ms-ssim-rgb"].append(ms_ssim_rgb(img, rec))
            matched = largest_within(j2k, memo, len(data))
            if matched is None:
                raise SystemExit(f"OpenJPEG cannot make a file as small as caec's at quality {q}")
            jdata, jrec = matched
            per_a["bpp"].append(8 * len(jdata) / px)
            per_a["psnr-rgb"].append(psnr_rgb(img, jrec))
            per_a["ms-ssim-rgb"].append(ms_ssim_rgb(img, jrec))
        for k in out:
            out[k].append(float(np.mean(per[k])))
        for k in anchor:
            anchor[k].append(float(np.mean(per_a[k])))
    return out, anchor


def _db(msssim: list[float]) -> list[float]:
    return [ms_ssim_db(v) for v in msssim]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="cae-gdn-v1")
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--images", type=int, default=8, help="first N images of the dataset")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", type=Path, default=None, help="JSON with every curve")
    ap.add_argument("--markdown", type=Path, default=None, help="rewrite the table between markers in this file")
    args = ap.parse_args()
    files = sorted(args.dataset.glob("*.png"))[: args.images]
    if not files:
        raise SystemExit(f"no .png images in {args.dataset}")
    images = [open_image(f)[:, :, :3] for f in files]
    qualities = list(range(quant.QUALITY_MIN, quant.QUALITY_MAX + 1))
    j2k = Jpeg2000()
    # one memo per image: every variant's bisection reuses the OpenJPEG files made before
    memos = [MemoEncoder(lambda k, img=img: j2k.encode(img, k)) for img in images]
    results: dict[str, object] = {"images": [f.name for f in files]}
    print(f"{'variant':14s} {'BD-rate PSNR':>13s} {'BD-rate MS-SSIM':>16s} {'s/image':>8s}  bpp range")
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS and not _encode_options(n)]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r} (known: {', '.join(VARIANTS)}, refine-N)")
    for name in names:
        codec = get_codec(args.model, "cpu")
        for member in plain_codecs(codec):  # a family: the variant applies to every member
            VARIANTS.get(name, lambda c: None)(member)
        options = _encode_options(name)
        c, anchor = measure(
            images,
            qualities,
            lambda img, q, codec=codec, options=options: codec.encode(img, quality=q, **options),
            lambda data, codec=codec: codec.decode(container.parse(data)),
            memos,
        )
        bd_p = bd_rate(anchor["bpp"], anchor["psnr-rgb"], c["bpp"], c["psnr-rgb"])
        bd_m = bd_rate(anchor["bpp"], _db(anchor["ms-ssim-rgb"]), c["bpp"], _db(c["ms-ssim-rgb"]))
        c.update({"bd_rate_psnr": bd_p, "bd_rate_msssim": bd_m})
        results[name] = c
        results[f"{name}:jpeg2000"] = anchor
        print(
            f"{name:14s} {bd_p:12.1f}% {bd_m:15.1f}% {np.mean(c['seconds']):8.2f}  "
            f"{min(c['bpp']):.3f}..{max(c['bpp']):.3f}",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    if args.markdown:
        write_table(args.markdown, results, args, len(files))


START, END = "<!-- experiments:start -->", "<!-- experiments:end -->"


def write_table(path: Path, results: dict[str, Any], args: argparse.Namespace, n_images: int) -> None:
    rows = [
        f"Model `{args.model}`, first {n_images} Kodak images, qualities "
        f"{quant.QUALITY_MIN}..{quant.QUALITY_MAX}; anchor OpenJPEG bisected per image to caec's file sizes in "
        f"the same run; CPU, {torch.get_num_threads()} torch threads; "
        f"`python research/experiments.py --model {args.model} --images {args.images} --variants {args.variants} "
        f"--markdown {path}`.",
        "",
        "| variant | BD-rate PSNR-RGB | BD-rate MS-SSIM-RGB | CPU encode+decode (s/image) | bpp range |",
        "|---|---|---|---|---|",
    ]
    for name, c in results.items():
        if name == "images" or name.endswith(":jpeg2000"):
            continue
        rows.append(
            f"| {name} | {c['bd_rate_psnr']:+.1f}% | {c['bd_rate_msssim']:+.1f}% | {np.mean(c['seconds']):.2f} | "
            f"{min(c['bpp']):.3f} .. {max(c['bpp']):.3f} |"
        )
    rewrite_marked(path, START, END, "\n".join(rows))


if __name__ == "__main__":
    main()
