"""Settings of encode-time refinement (``caec encode --refine``) against the plain encoder.

For every combination of the given iteration counts, learning rates, distortion weights and
final temperatures (comma-separated lists), each photo is encoded at each quality with and
without refinement, at the same step, and the table gives mean bpp and PSNR-RGB and the
BD-rate of the refined files against the plain ones (negative: smaller at equal PSNR).
This is how the defaults of ``cae_codec.cae.refine.RefineSettings`` were chosen
(docs/experiments.md, "Encode-time refinement").

Usage: python research/refine_sweep.py --images 2 --qualities 2,4,6,8 --iterations 10,20 --lr 0.01,0.03
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.cae.codec import FamilyAnalysis, FamilyCodec
from cae_codec.cae.refine import RefineSettings, refine_latent
from cae_codec.errors import CaecError
from cae_codec.evaluate.bdrate import bd_rate
from cae_codec.evaluate.metrics import psnr_rgb
from cae_codec.imageio import open_image
from cae_codec.stages import quant
from cae_codec.trainkit import list_images


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"expected comma-separated numbers, got {text!r}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--images", type=int, default=2, help="first N photos of the dataset")
    ap.add_argument("--qualities", default="2,4,6,8")
    ap.add_argument("--iterations", default="20")
    d = RefineSettings()
    ap.add_argument("--lr", default=str(d.learning_rate), help="Adam's step, in quantization steps")
    ap.add_argument("--weight", default=str(d.distortion_weight), help="distortion weight (times 1/step^2)")
    ap.add_argument("--tau-end", default=str(d.tau_end), help="final soft-rounding temperature")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    qualities = [int(q) for q in _floats(args.qualities)]
    if any(not quant.QUALITY_MIN <= q <= quant.QUALITY_MAX for q in qualities):
        raise SystemExit(f"qualities must be {quant.QUALITY_MIN}..{quant.QUALITY_MAX}")
    iterations = [int(n) for n in _floats(args.iterations)]
    if any(not 1 <= n <= quant.REFINE_MAX for n in iterations):
        raise SystemExit(f"iterations must be 1..{quant.REFINE_MAX}")
    try:
        files = list_images(args.dataset)[: args.images] if args.dataset.is_dir() else []
    except CaecError:  # a folder without images
        files = []
    if not files:
        raise SystemExit(f"no photos in {args.dataset}")
    codec = get_codec(args.model, "cpu")
    photos = [FamilyAnalysis(open_image(f)[:, :, :3]) for f in files]

    def point(photo: FamilyAnalysis, q: int, n: int, settings: RefineSettings) -> tuple[float, float]:
        nominal = quant.step_for_quality(q)
        member, step = codec.at(nominal) if isinstance(codec, FamilyCodec) else (codec, nominal)
        a = photo.of(member)
        if n:
            a = refine_latent(member, a, photo.image, step, n, settings=settings)
        data = member.pack(a, step, q)
        rec = member.decode(container.parse(data))
        return 8 * len(data) / (photo.height * photo.width), psnr_rgb(photo.image, rec)

    def curve(n: int, settings: RefineSettings) -> np.ndarray:
        return np.array([np.mean([point(p, q, n, settings) for p in photos], axis=0) for q in qualities])

    plain = curve(0, d)
    print(
        f"{args.model}, first {len(files)} photos of {args.dataset}, qualities {args.qualities}; "
        f"plain: {' / '.join(f'{b:.4f} bpp {p:.2f} dB' for b, p in plain)}\n"
    )
    print("| iterations | lr | weight | tau end | bpp change | PSNR change (dB) | BD-rate vs plain | s/image |")
    print("|---|---|---|---|---|---|---|---|")
    for n, lr, w, tau in itertools.product(iterations, _floats(args.lr), _floats(args.weight), _floats(args.tau_end)):
        settings = RefineSettings(learning_rate=lr, distortion_weight=w, tau_end=tau)
        t0 = time.perf_counter()
        got = curve(n, settings)
        seconds = (time.perf_counter() - t0) / (len(photos) * len(qualities))
        bd = bd_rate(plain[:, 0], plain[:, 1], got[:, 0], got[:, 1])
        rate = 100 * (got[:, 0] / plain[:, 0] - 1)
        dpsnr = got[:, 1] - plain[:, 1]
        print(
            f"| {n} | {lr:g} | {w:g} | {tau:g} | {rate.min():+.1f}..{rate.max():+.1f}% | "
            f"{dpsnr.min():+.2f}..{dpsnr.max():+.2f} | {bd:+.2f}% | {seconds:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
