"""What a decoder fine-tune buys: the same .cae files decoded by two models that share an encoder.

Every Kodak image is encoded once per --quality with BASE; the file is decoded by BASE and by
TUNED (which must write the very same latent bitstream, or the comparison is refused). Rates
are equal by construction, so the table is the quality difference at equal file size.
Usage: python research/decoder_gain.py --base cae-gdn-v2 --tuned cae-gdn-v2.1 [--markdown FILE]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import get_codec
from cae_codec.evaluate.metrics import ms_ssim_rgb, psnr_rgb
from cae_codec.evaluate.report import rewrite_marked
from cae_codec.imageio import open_image
from cae_codec.stages import quant

START, END = "<!-- decoder-gain:start -->", "<!-- decoder-gain:end -->"


def one_image(job: tuple[str, str, str, list[int]]) -> list[tuple[float, float, float, float, float]]:
    torch.set_num_threads(1)
    base_name, tuned_name, path, qualities = job
    base, tuned = get_codec(base_name, "cpu"), get_codec(tuned_name, "cpu")
    img = open_image(Path(path))[:, :, :3]
    analysis, tuned_analysis = base.analyse(img), tuned.analyse(img)
    rows = []
    for q in qualities:
        step = quant.step_for_quality(q)
        data = base.pack(analysis, step, q)
        box = container.parse(data)
        tuned_box = container.parse(tuned.pack(tuned_analysis, step, q))
        if box.chunks != tuned_box.chunks:
            raise SystemExit(f"{tuned_name} does not write {base_name}'s bitstream: not a decoder-only change")
        a, b = base.decode(box), tuned.decode(tuned_box)
        bpp = 8 * len(data) / (img.shape[0] * img.shape[1])
        rows.append((bpp, psnr_rgb(img, a), psnr_rgb(img, b), ms_ssim_rgb(img, a), ms_ssim_rgb(img, b)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--tuned", required=True)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--markdown", type=Path, default=None, help="rewrite the table between markers in this file")
    args = ap.parse_args()
    files = sorted(args.dataset.glob("*.png"))
    if not files:
        raise SystemExit(f"no .png images in {args.dataset}")
    qualities = list(range(quant.QUALITY_MIN, quant.QUALITY_MAX + 1))
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [(args.base, args.tuned, str(f), qualities) for f in files]
        per_image = np.array(list(pool.map(one_image, jobs)))  # (images, qualities, 5)
    mean = per_image.mean(axis=0)
    lines = [
        f"Kodak, {len(files)} images, the same files decoded by `{args.base}` and `{args.tuned}`, per-image "
        f"metrics averaged (`python research/decoder_gain.py --base {args.base} --tuned {args.tuned}`).",
        "",
        f"| quality | step | bpp | PSNR {args.base} | PSNR {args.tuned} | gain (dB) "
        f"| MS-SSIM {args.base} | MS-SSIM {args.tuned} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for q, (bpp, pa, pb, ma, mb) in zip(qualities, mean, strict=True):
        lines.append(
            f"| {q} | {quant.step_for_quality(q):.3g} | {bpp:.3f} | {pa:.2f} | {pb:.2f} | {pb - pa:+.2f} "
            f"| {ma:.4f} | {mb:.4f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        rewrite_marked(args.markdown, START, END, text)


if __name__ == "__main__":
    main()
