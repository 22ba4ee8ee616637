"""comcnn's rate at each --quality on Kodak with the shipped model (docs/comcnn.md).

    python research/comcnn_quality_bpp.py ../shared/data/kodak

File bytes x 8 / pixels per image, averaged, at qualities 5..90. One-off study; never imported
by the product.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from cae_codec import registry
from cae_codec.imageio import read_image_rgb8

QUALITIES = [5, 10, 20, 30, 40, 50, 60, 75, 90]


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    codec = registry.load("comcnn", None, "cpu")
    rates: dict[int, list[float]] = {q: [] for q in QUALITIES}
    for path in sorted(Path(argv[0] if argv else "../shared/data/kodak").glob("*.png")):
        img = read_image_rgb8(path)
        analysis = codec.analyse(img)
        for q in QUALITIES:
            rates[q].append(8 * len(codec.pack(analysis, q)) / (img.shape[0] * img.shape[1]))
    for q in QUALITIES:
        print(f"quality {q}: {np.mean(rates[q]):.4f} bpp")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
