"""What an encoder fine-tune buys: two models (or families) with the very same decoders and PCA.

`caec train --encoder-only` changes only the encoder (and its rate model), so the two models
write different files for the same image and quality: both the rate and the quality move.
Every image is encoded at each --quality by BASE and by TUNED and decoded by each one's own
decoder; the table gives both curves per quality, and the BD-rate of TUNED against BASE (PSNR-RGB
and MS-SSIM-RGB in dB, on the per-quality averages). Refused when the decoders or the PCA differ:
then it is not an encoder-only change, and the rows would mix two effects.
Usage: python research/encoder_gain.py --base cae-gdn-v3 --tuned runs/cae-gdn-v3.1.family.json
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import get_codec
from cae_codec.cae.codec import plain_codecs
from cae_codec.errors import CaecError
from cae_codec.evaluate.metrics import ms_ssim_db, ms_ssim_rgb, psnr_rgb
from cae_codec.evaluate.report import bd_rate_text, rewrite_marked
from cae_codec.imageio import open_image
from cae_codec.stages import quant

START, END = "<!-- encoder-gain:start -->", "<!-- encoder-gain:end -->"
DECODER_PREFIXES = ("decoder.", "band_decoders.")


def same_decoders(base: str, tuned: str) -> str | None:
    """Why BASE and TUNED are not an encoder-only change, or None when they are."""
    a, b = plain_codecs(get_codec(base, "cpu")), plain_codecs(get_codec(tuned, "cpu"))
    if len(a) != len(b):
        return f"{base} has {len(a)} member(s) and {tuned} {len(b)}"
    for ca, cb in zip(a, b, strict=True):
        sa, sb = ca.model.network.state_dict(), cb.model.network.state_dict()
        keys = [k for k in sa if k.startswith(DECODER_PREFIXES)]
        if {k for k in sb if k.startswith(DECODER_PREFIXES)} != set(keys) or not all(
            torch.equal(sa[k], sb[k]) for k in keys
        ):
            return f"{cb.name}'s decoders are not {ca.name}'s"
        if not (torch.equal(ca.mean, cb.mean) and torch.equal(ca.basis, cb.basis)):
            return f"{cb.name}'s PCA is not {ca.name}'s"
    return None


def one_image(job: tuple[str, str, str, list[int]]) -> list[tuple[float, ...]]:
    """Per quality: bpp, PSNR, MS-SSIM of BASE's file, then of TUNED's."""
    torch.set_num_threads(1)
    base_name, tuned_name, path, qualities = job
    img = open_image(Path(path))[:, :, :3]
    pixels = img.shape[0] * img.shape[1]
    rows = []
    codecs = get_codec(base_name, "cpu"), get_codec(tuned_name, "cpu")
    analyses = [c.analyse(img) for c in codecs]
    for q in qualities:
        step = quant.step_for_quality(q)
        row: list[float] = []
        for codec, analysis in zip(codecs, analyses, strict=True):
            data = codec.pack(analysis, step, q)  # type: ignore[arg-type]
            rec = codec.decode(container.parse(data))
            row += [8 * len(data) / pixels, psnr_rgb(img, rec), ms_ssim_rgb(img, rec)]
        rows.append(tuple(row))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--tuned", required=True)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--images", type=int, default=None, help="first N images of the dataset")
    ap.add_argument("--qualities", default=f"{quant.QUALITY_MIN}-{quant.QUALITY_MAX}", help="e.g. 6-10 or 1,3,5")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--markdown", type=Path, default=None, help="rewrite the table between markers in this file")
    args = ap.parse_args()
    try:
        qualities = _parse_qualities(args.qualities)
    except ValueError:
        raise SystemExit(
            f"encoder_gain: --qualities {args.qualities!r}: give qualities in 1..10 as 6-10 or 1,3,5"
        ) from None
    try:
        why = same_decoders(args.base, args.tuned)
    except CaecError as e:
        raise SystemExit(f"encoder_gain: {e}") from None
    if why:
        raise SystemExit(f"encoder_gain: not an encoder-only change: {why}")
    files = sorted(args.dataset.glob("*.png"))[: args.images]
    if not files:
        raise SystemExit(f"encoder_gain: no .png images in {args.dataset}")
    with ProcessPoolExecutor(args.workers) as pool:
        per_image = list(pool.map(one_image, [(args.base, args.tuned, str(f), qualities) for f in files]))
    mean = np.mean(np.array(per_image), axis=0)  # (qualities, 6), averaged over images
    ssim_db = np.vectorize(ms_ssim_db)
    lines = [
        f"{len(files)} images of {args.dataset.name}, per-image metrics averaged; each model's own files decoded "
        f"by its own decoders (`python research/encoder_gain.py --base {args.base} --tuned {args.tuned} "
        f"--qualities {args.qualities}{f' --images {args.images}' if args.images else ''}`).",
        "",
        f"BD-rate of {args.tuned} against {args.base}: PSNR-RGB "
        f"{bd_rate_text(mean[:, 0], mean[:, 1], mean[:, 3], mean[:, 4])}, MS-SSIM-RGB "
        f"{bd_rate_text(mean[:, 0], ssim_db(mean[:, 2]), mean[:, 3], ssim_db(mean[:, 5]))}.",
        "",
        "| quality | bpp base | PSNR base | MS-SSIM base | bpp tuned | PSNR tuned | MS-SSIM tuned |",
        "|---|---|---|---|---|---|---|",
    ]
    for q, r in zip(qualities, mean, strict=True):
        lines.append(f"| {q} | {r[0]:.3f} | {r[1]:.2f} | {r[2]:.4f} | {r[3]:.3f} | {r[4]:.2f} | {r[5]:.4f} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        rewrite_marked(args.markdown, START, END, table)


def _parse_qualities(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(t) for t in text.split("-"))
        out = list(range(lo, hi + 1))
    else:
        out = [int(t) for t in text.split(",")]
    if len(out) < 2 or any(not quant.QUALITY_MIN <= q <= quant.QUALITY_MAX for q in out):
        raise ValueError(text)
    return out


if __name__ == "__main__":
    main()
