"""Kodak results of a model at every --quality, next to OpenJPEG at the same file sizes.

For each quality and image: caec's file, then OpenJPEG bisected to the largest file not above
it; PSNR-RGB and MS-SSIM-RGB per image, then averaged. Prints a markdown table and, with
--card, rewrites the table between the markers in the model card.
Usage: python tools/model_card.py --model cae-gdn-v3 --card docs/models.md
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.evaluate.classic import Jpeg2000, largest_within
from cae_codec.evaluate.metrics import ms_ssim_rgb, psnr_rgb
from cae_codec.evaluate.report import rewrite_marked
from cae_codec.imageio import open_image
from cae_codec.ratecontrol import MemoEncoder
from cae_codec.stages import quant

START, END = "<!-- kodak-table:start -->", "<!-- kodak-table:end -->"


def one_image(job: tuple[str, str, list[int]]) -> list[dict[str, float]]:
    torch.set_num_threads(1)
    model, path, qualities = job
    codec = get_codec(model, "cpu")
    j2k = Jpeg2000()
    img = open_image(Path(path))[:, :, :3]
    px = img.shape[0] * img.shape[1]
    memo = MemoEncoder(lambda k: j2k.encode(img, k))
    rows = []
    for q in qualities:
        data = codec.encode(img, quality=q)
        rec = codec.decode(container.parse(data))
        row = {"quality": q, "bpp": 8 * len(data) / px, "psnr": psnr_rgb(img, rec), "msssim": ms_ssim_rgb(img, rec)}
        matched = largest_within(j2k, memo, len(data))
        if matched is not None:
            jdata, jrec = matched
            row |= {"j2k_bpp": 8 * len(jdata) / px, "j2k_psnr": psnr_rgb(img, jrec)}
            row |= {"j2k_msssim": ms_ssim_rgb(img, jrec)}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--qualities", type=int, nargs="+", default=None, help="default: every quality")
    ap.add_argument("--card", type=Path, default=None, help="rewrite the table between the markers in this file")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    files = sorted(args.dataset.glob("*.png"))
    if not files:
        print(f"model_card: error: no .png images in {args.dataset}", file=sys.stderr)
        return 1
    qualities = args.qualities or list(range(quant.QUALITY_MIN, quant.QUALITY_MAX + 1))
    if any(not quant.QUALITY_MIN <= q <= quant.QUALITY_MAX for q in qualities):
        print(f"model_card: error: qualities are {quant.QUALITY_MIN}..{quant.QUALITY_MAX}", file=sys.stderr)
        return 1
    with ProcessPoolExecutor(args.workers) as pool:
        per_image = list(pool.map(one_image, [(str(args.model), str(f), qualities) for f in files]))
    lines = [
        f"Kodak, {len(files)} images, per-image metrics averaged; OpenJPEG bisected per image to the largest "
        "file not above caec's (`python tools/model_card.py`).",
        "",
        "| quality | step | caec bpp | caec PSNR (dB) | caec MS-SSIM "
        "| JPEG2000 bpp | JPEG2000 PSNR (dB) | JPEG2000 MS-SSIM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table = []
    for i, q in enumerate(qualities):
        rows = [img_rows[i] for img_rows in per_image]

        def avg(key: str, rows: list[dict[str, float]] = rows) -> float:
            vals = [r[key] for r in rows if key in r]
            return float(np.mean(vals)) if len(vals) == len(rows) else float("nan")

        entry = {k: avg(k) for k in ("bpp", "psnr", "msssim", "j2k_bpp", "j2k_psnr", "j2k_msssim")}
        table.append({"quality": q, **entry})
        lines.append(
            f"| {q} | {quant.step_for_quality(q):.3g} | {entry['bpp']:.3f} | {entry['psnr']:.2f} | "
            f"{entry['msssim']:.4f} | {entry['j2k_bpp']:.3f} | {entry['j2k_psnr']:.2f} | {entry['j2k_msssim']:.4f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "table": table, "per_image": per_image}, indent=1))
    if args.card:
        rewrite_marked(args.card, START, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
