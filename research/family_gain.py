"""The step gain that joins two family members' rates at a band boundary.

A family (cae_codec/cae/family.py) switches from FINE (the member below the boundary) to COARSE at
the nominal step BOUNDARY. FINE quantizes with the boundary step itself; COARSE quantizes with
gain x step. This finds the gain at which COARSE's mean rate equals FINE's at the boundary,
over the first --images photos of --dataset, by bisection on COARSE's step (its rate falls as
its step grows). Fit it on training photos, not on the test set.

Usage: python research/family_gain.py --fine cae-gdn-v3-high --coarse cae-gdn-v3-low --boundary 1.19
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from cae_codec.api import get_codec
from cae_codec.cae.codec import Analysis, CaePcaJ2kCodec
from cae_codec.errors import CaecError
from cae_codec.imageio import open_image
from cae_codec.trainkit import list_images


def mean_bpp(codec: CaePcaJ2kCodec, analyses: list[Analysis], step: float) -> float:
    return float(np.mean([8 * len(codec.pack(a, step)) / (a.height * a.width) for a in analyses]))


def fit_step(
    fine: CaePcaJ2kCodec, coarse: CaePcaJ2kCodec, images: list[np.ndarray], boundary: float
) -> tuple[float, float]:
    """FINE's mean bpp at ``boundary``, and the step at which COARSE spends the same."""
    target = mean_bpp(fine, [fine.analyse(i) for i in images], boundary)
    analyses = [coarse.analyse(i) for i in images]
    lo, hi = math.log(boundary / 16), math.log(boundary * 16)
    for _ in range(20):  # rate falls as the step grows
        mid = 0.5 * (lo + hi)
        if mean_bpp(coarse, analyses, math.exp(mid)) > target:
            lo = mid
        else:
            hi = mid
    return target, math.exp(0.5 * (lo + hi))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fine", required=True, help="member below the boundary (a model, not a family)")
    ap.add_argument("--coarse", required=True, help="member from the boundary up")
    ap.add_argument("--boundary", type=float, required=True, help="nominal step where the members meet")
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--images", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(2)
    try:
        files = list_images(args.dataset)[: args.images]  # the photos, in the order training lists them
    except CaecError as e:
        raise SystemExit(str(e)) from None
    fine, coarse = get_codec(args.fine, "cpu"), get_codec(args.coarse, "cpu")
    if not (isinstance(fine, CaePcaJ2kCodec) and isinstance(coarse, CaePcaJ2kCodec)):
        raise SystemExit("--fine and --coarse must be single models, not families")
    images = [open_image(f)[:, :, :3] for f in files]
    target, step = fit_step(fine, coarse, images, args.boundary)
    at_boundary = mean_bpp(coarse, [coarse.analyse(i) for i in images], args.boundary)
    print(
        f"{len(files)} images from {args.dataset}: {args.fine} at step {args.boundary:g} makes {target:.4f} bpp; "
        f"{args.coarse} makes it at step {step:.4f} ({at_boundary:.4f} bpp at {args.boundary:g}): "
        f"step_gain {step / args.boundary:.3f}"
    )


if __name__ == "__main__":
    main()
