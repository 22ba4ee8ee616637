"""What each `--quality` gives: mean bpp and mean PSNR-RGB over a folder of photos, per quality,
and the change from the quality below.

Each file is the one `caec encode -q Q` writes (the codec's own encode), decoded as `caec
decode` does; PSNR-RGB is the evaluation's (cae_codec/evaluate/metrics.py). The table in
docs/design.md ("What the quality scale does") comes from

    python tools/quality_scale.py --dataset ../shared/data/kodak

(24 images x 10 qualities: about 3 minutes on one CPU thread).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.cae.codec import Codec, member_of
from cae_codec.errors import CaecError
from cae_codec.evaluate.metrics import as_rgb8, bits_per_pixel, psnr_rgb
from cae_codec.imageio import open_image
from cae_codec.stages import quant
from cae_codec.trainkit import list_images


@dataclass(frozen=True)
class QualityRow:
    quality: int
    step: float  # the nominal quantization step of the quality
    members: tuple[str, ...]  # the model(s) that wrote the files (a family's member)
    bpp: float  # mean over the images
    psnr: float  # mean PSNR-RGB (dB) over the images


def measure(codec: Codec, images: list[np.ndarray], qualities: list[int]) -> list[QualityRow]:
    """One row per quality, in the order given."""
    rows = []
    for q in qualities:
        bpps, psnrs, members = [], [], set()
        for img in images:
            data = codec.encode(img, quality=q)
            box = container.parse(data)
            rec = codec.decode(box)
            members.add(member_of(codec, box).name)
            bpps.append(bits_per_pixel(len(data), *img.shape[:2]))
            psnrs.append(psnr_rgb(as_rgb8(img), as_rgb8(rec)))
        rows.append(QualityRow(q, quant.step_for_quality(q), tuple(sorted(members)), mean(bpps), mean(psnrs)))
    return rows


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def table(rows: list[QualityRow]) -> list[str]:
    """Markdown; the last two columns compare each row with the one above it."""
    out = [
        "| quality | nominal step | member | mean bpp | bpp x (over the row above) | mean PSNR-RGB (dB) "
        "| dB (over the row above) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rows):
        ratio = f"{r.bpp / rows[i - 1].bpp:.2f}" if i else ""
        gain = f"{r.psnr - rows[i - 1].psnr:+.2f}" if i else ""
        out.append(
            f"| {r.quality} | {r.step:.3g} | {', '.join(r.members)} | {r.bpp:.4f} | {ratio} | {r.psnr:.2f} | {gain} |"
        )
    return out


def _qualities(text: str) -> list[int]:
    try:
        qs = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not qs or any(not quant.QUALITY_MIN <= q <= quant.QUALITY_MAX for q in qs):
        raise argparse.ArgumentTypeError(f"qualities are {quant.QUALITY_MIN}..{quant.QUALITY_MAX}, got {text!r}")
    return qs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True, help="a folder of photos (all of them are used)")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="model or family (default: %(default)s)")
    ap.add_argument("--qualities", type=_qualities, default=list(range(quant.QUALITY_MIN, quant.QUALITY_MAX + 1)))
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.dataset.is_dir():
        print(f"quality_scale: error: {args.dataset} is not a folder", file=sys.stderr)
        return 1
    try:
        files = list_images(args.dataset)[: args.limit]
        images = [open_image(f) for f in files]
        codec = get_codec(args.model, "cpu")
    except CaecError as e:
        print(f"quality_scale: error: {e}", file=sys.stderr)
        return 1
    rows = measure(codec, images, args.qualities)
    print(f"{args.model} on {len(images)} images from {args.dataset}:\n")
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
