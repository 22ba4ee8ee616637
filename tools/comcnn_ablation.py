"""The ComCNN paper's ablation on our data: at equal inner-JPEG quality, plain JPEG, ComCNN + JPEG
+ bicubic (no RecCNN), bicubic down + JPEG + RecCNN (no ComCNN) and the full system, each with
its bpp, PSNR-RGB and MS-SSIM-RGB per image, then averaged; and the full system's decode time.

    python tools/comcnn_ablation.py --qualities 5 10 --markdown docs/comcnn.md

Rates: plain JPEG and the no-ComCNN row count their JPEG file alone; the comcnn rows count the
whole .cae file (the container's few dozen bytes included). Decode time: `caec decode`'s work
(container parse, JPEG decode, bicubic, RecCNN) per image with --threads torch threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cae_codec import container, contract, registry
from cae_codec.api import get_codec
from cae_codec.comcnn import inner
from cae_codec.comcnn.codec import ComCnnCodec
from cae_codec.comcnn.network import upscale
from cae_codec.contract import Codec
from cae_codec.evaluate.classic import Jpeg, largest_within
from cae_codec.evaluate.metrics import ms_ssim_rgb, psnr_rgb
from cae_codec.evaluate.report import rewrite_marked
from cae_codec.imageio import read_image_rgb8
from cae_codec.ratecontrol import MemoEncoder

START, END = "<!-- comcnn-ablation:start -->", "<!-- comcnn-ablation:end -->"
ROWS = (
    ("jpeg", "JPEG"),
    ("com_bicubic", "ComCNN + JPEG + bicubic (no RecCNN)"),
    ("jpeg_rec", "bicubic down + JPEG + RecCNN (no ComCNN)"),
    ("full", "ComCNN + JPEG + RecCNN (the codec)"),
)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) floats -> (H, W, 3) uint8."""
    return (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def measure(img: np.ndarray, rec: np.ndarray, nbytes: int) -> tuple[float, float, float]:
    return 8 * nbytes / (img.shape[0] * img.shape[1]), psnr_rgb(img, rec), ms_ssim_rgb(img, rec)


def decode_seconds(codec: Codec, data: bytes) -> float:
    t0 = time.perf_counter()
    codec.decode(container.parse(data))
    return time.perf_counter() - t0


@torch.inference_mode()
def one_image(codec: ComCnnCodec, img: np.ndarray, quality: int) -> dict[str, tuple[float, ...]]:
    """Every row's (bpp, PSNR, MS-SSIM) on ``img`` (H, W even) at inner quality ``quality``, and
    the full system's decode seconds."""
    h, w = img.shape[:2]
    out: dict[str, tuple[float, ...]] = {}
    plain = Jpeg()
    data = plain.encode(img, quality)
    out["jpeg"] = measure(img, plain.decode(data), len(data))
    analysis = codec.analyse(img)
    cae = codec.pack(analysis, quality)
    full = codec.decode(container.parse(cae))
    out["full"] = (*measure(img, full, len(cae)), decode_seconds(codec, cae))
    decoded = inner.decode(inner.encode(analysis.compact, quality), 3)
    up = upscale(torch.from_numpy(decoded).permute(2, 0, 1).float()[None] / 255)
    out["com_bicubic"] = measure(img, to_uint8(up)[:h, :w], len(cae))
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255
    down = to_uint8(F.interpolate(x, scale_factor=0.5, mode="bicubic", align_corners=False, antialias=True))
    stream = inner.encode(down, quality)
    rec = codec.reconstruct(inner.decode(stream, 3))
    out["jpeg_rec"] = measure(img, np.clip(np.round(rec * 255), 0, 255).astype(np.uint8)[:h, :w], len(stream))
    return out


def table(
    results: dict[int, list[dict[str, tuple[float, ...]]]],
    model: str,
    images: int,
    threads: int,
    cae_times: list[float],
    cae_name: str,
    load: tuple[str, str],
) -> str:
    lines = [
        f"Kodak, {images} images, model {model}; per image, then averaged. Decode: {threads} torch threads.",
        "",
        "| JPEG quality | system | bpp | PSNR-RGB (dB) | MS-SSIM-RGB |",
        "|---:|---|---:|---:|---:|",
    ]
    for q, per_image in results.items():
        for key, label in ROWS:
            bpp, psnr, msssim = (float(np.mean([r[key][i] for r in per_image])) for i in range(3))
            lines.append(f"| {q} | {label} | {bpp:.3f} | {psnr:.2f} | {msssim:.4f} |")
    times = [r["full"][3] for per_image in results.values() for r in per_image]
    decode = f"comcnn {np.mean(times):.2f} s an image on average (max {np.max(times):.2f} s)"
    lines += ["", f"Decode, {threads} threads: {decode}"]
    if cae_times:
        lines[-1] += f"; the default codec ({cae_name}, its default quality) {np.mean(cae_times):.2f} s"
    lines[-1] += f". Load average before and after: {load[0]}, {load[1]}."
    return "\n".join(lines)


def crop_sheet(codec: ComCnnCodec, img: np.ndarray, bpp: float, box: tuple[int, int, int], out: Path) -> str:
    """A PNG of one crop (y, x, side) side by side: the original, JPEG and comcnn at the same
    size (comcnn's file at ``bpp``, then JPEG's largest file not above it). Returns its caption."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    data = contract.encode(codec, img, bpp=bpp)
    ours = codec.decode(container.parse(data))
    plain = Jpeg()
    found = largest_within(plain, MemoEncoder(lambda k: plain.encode(img, k)), len(data))
    if found is None:
        raise SystemExit(f"comcnn_ablation: JPEG has no file within {len(data)} bytes for the crop sheet")
    jdata, theirs = found
    y, x, side = box
    panels = []
    labels = [
        "original",
        f"JPEG {8 * len(jdata) / (h * w):.3f} bpp, {psnr_rgb(img, theirs):.2f} dB",
        f"comcnn {8 * len(data) / (h * w):.3f} bpp, {psnr_rgb(img, ours):.2f} dB",
    ]
    for picture, label in zip((img, theirs, ours), labels, strict=True):
        panel = Image.fromarray(picture[y : y + side, x : x + side]).resize((2 * side, 2 * side), Image.NEAREST)
        canvas = Image.new("RGB", (2 * side, 2 * side + 18), "white")
        canvas.paste(panel, (0, 18))
        ImageDraw.Draw(canvas).text((4, 3), label, fill="black")
        panels.append(canvas)
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), panels[0].height), "white")
    for i, panel in enumerate(panels):
        sheet.paste(panel, (i * (panel.width + 8), 0))
    sheet.save(out)
    where = f"{out.name}: a {side}x{side} crop at ({x}, {y}) shown 2x"
    return f"{where}; " + "; ".join(labels) + " (PSNR of the whole image)"


ENHANCE_START, ENHANCE_END = "<!-- comcnn-enhance:start -->", "<!-- comcnn-enhance:end -->"


def enhance_table(model: str, images: list[np.ndarray], qualities: list[int]) -> str:
    """`caec enhance`'s gain: each Kodak image as a plain JPEG at each quality, then enhanced."""
    from cae_codec.comcnn.enhance import Enhancer

    enhancer = Enhancer(model)
    plain = Jpeg()
    lines = [
        f"`caec enhance` with {enhancer.name} on Kodak ({len(images)} images) as plain JPEG files (4:2:0, "
        "libjpeg-turbo); per image, then averaged.",
        "",
        "| JPEG quality | bpp | JPEG PSNR-RGB | enhanced | gain (dB) | JPEG MS-SSIM | enhanced |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for q in qualities:
        rows = []
        for img in images:
            data = plain.encode(img, q)
            before = plain.decode(data)
            after = enhancer.enhance(data, "kodak", None)
            bpp = 8 * len(data) / (img.shape[0] * img.shape[1])
            rows.append(
                (bpp, psnr_rgb(img, before), psnr_rgb(img, after), ms_ssim_rgb(img, before), ms_ssim_rgb(img, after))
            )
        bpp, p0, p1, m0, m1 = (float(np.mean([r[i] for r in rows])) for i in range(5))
        lines.append(f"| {q} | {bpp:.3f} | {p0:.2f} | {p1:.2f} | {p1 - p0:+.2f} | {m0:.4f} | {m1:.4f} |")
    return "\n".join(lines)


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=registry.get("comcnn").default_model)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--qualities", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--no-time-default", dest="time_default", action="store_false", help="leave out the default codec's decode time"
    )
    ap.add_argument("--markdown", type=Path, default=None, help="rewrite the table between the markers in this file")
    ap.add_argument("--enhance-qualities", type=int, nargs="*", default=[], help="also measure `caec enhance` here")
    ap.add_argument("--enhance-model", default="comcnn-enhance")
    ap.add_argument("--crop-sheet", type=Path, default=None, help="also write a crop sheet PNG here")
    ap.add_argument("--crop-image", default="kodim23.png", help="the crop sheet's image in the dataset")
    ap.add_argument("--crop-bpp", type=float, default=0.25, help="comcnn's rate on the crop sheet")
    ap.add_argument("--crop-box", type=int, nargs=3, default=[40, 280, 192], metavar=("Y", "X", "SIDE"))
    args = ap.parse_args(argv)
    if not args.dataset.is_dir():
        print(f"comcnn_ablation: no dataset folder {args.dataset}", file=sys.stderr)
        return 2
    if any(not 1 <= q <= 100 for q in args.qualities):
        print("comcnn_ablation: qualities are 1..100", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    codec = registry.load("comcnn", args.model, "cpu")
    assert isinstance(codec, ComCnnCodec)
    files = sorted(p for p in args.dataset.iterdir() if p.suffix.lower() == ".png")[: args.limit]
    images = [read_image_rgb8(f) for f in files]
    before = _load()
    results = {q: [one_image(codec, img, q) for img in images] for q in args.qualities}
    # the default codec's decode on the same images, timed the same way, for comparison
    cae = get_codec(None, "cpu")
    cae_times = [decode_seconds(cae, contract.encode(cae, img)) for img in images] if args.time_default else []
    body = table(results, codec.name, len(images), args.threads, cae_times, cae.name, (before, _load()))
    if args.crop_sheet is not None:
        name, bpp, y, x, side = args.crop_image, args.crop_bpp, *args.crop_box
        body += "\n\n" + crop_sheet(codec, read_image_rgb8(args.dataset / name), bpp, (y, x, side), args.crop_sheet)
    print(body)
    if args.markdown is not None:
        rewrite_marked(args.markdown, START, END, body)
    if args.enhance_qualities:
        gains = enhance_table(args.enhance_model, images, args.enhance_qualities)
        print(gains)
        if args.markdown is not None:
            rewrite_marked(args.markdown, ENHANCE_START, ENHANCE_END, gains)
    return 0


if __name__ == "__main__":
    sys.exit(main())
