"""One codec's RD curve against others': BD-rate (the house's PCHIP BD-rate) and the rates at
which each other codec is at least as good.

    python research/comcnn_crossover.py docs/results/comcnn/comcnn.json docs/results/comcnn/{jpeg,jpeg2000,caec}.json

Reads curves that `caec bdrate --out` wrote (per-target averages over the images). For each
other codec and metric: the BD-rate of the first codec against it (negative: the first needs
fewer bits), and, interpolating both curves linearly in bpp over the rates both cover, the
intervals where the other codec's value reaches the first's (or "nowhere"). One-off study
for docs/comcnn.md; never imported by the product.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from cae_codec.evaluate.bdrate import BDRateError, bd_rate

METRICS = ("psnr-rgb", "ms-ssim-rgb")


def crossover(
    bpp_a: list[float], qa: list[float], bpp_b: list[float], qb: list[float]
) -> tuple[list[tuple[float, float]], float, float]:
    """The bpp intervals (within the range both curves cover) where curve b is at least curve a."""
    lo, hi = max(min(bpp_a), min(bpp_b)), min(max(bpp_a), max(bpp_b))
    grid = np.linspace(lo, hi, 2001)
    ahead = np.interp(grid, bpp_b, qb) >= np.interp(grid, bpp_a, qa)
    spans, start = [], None
    for x, on in zip(grid, ahead, strict=True):
        if on and start is None:
            start = float(x)
        elif not on and start is not None:
            spans.append((start, float(x)))
            start = None
    if start is not None:
        spans.append((start, hi))
    return spans, lo, hi


def to_db(values: list[float]) -> list[float]:
    return [-10 * math.log10(max(1 - v, 1e-12)) for v in values]


def main(argv: list[str]) -> int:
    first, *others = (json.loads(Path(p).read_text()) for p in argv)
    ra = first["results"]
    for other in others:
        rb = other["results"]
        for metric in METRICS:
            # MS-SSIM's BD-rate on its dB form, as `caec bdrate` computes it
            qa, qb = (to_db(r[metric]) if metric == "ms-ssim-rgb" else r[metric] for r in (ra, rb))
            try:
                bd = f"{bd_rate(rb['bpp'], qb, ra['bpp'], qa):+.1f}%"
            except BDRateError as e:
                bd = f"not comparable ({e})"
            spans, lo, hi = crossover(ra["bpp"], ra[metric], rb["bpp"], rb[metric])
            where = ", ".join(f"{a:.3f}-{b:.3f} bpp" for a, b in spans) or "nowhere"
            print(
                f"{first['name']} against {other['name']}, {metric}: BD-rate {bd}; {other['name']} at least as "
                f"good over {where} (curves compared over {lo:.3f}-{hi:.3f} bpp)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
