"""comcnn's decode time per Kodak image on a quiet machine (docs/comcnn.md, "Decode time").

    OMP_NUM_THREADS=2 python research/comcnn_decode_time.py ../shared/data/kodak 0.3 2

Each Kodak image is encoded with the shipped comcnn model at the largest file within BPP (the
shared rate control), then `cae_codec.decode` of that file is timed twice and the faster kept:
what `caec decode` waits for, without the process start and the PNG writing. One-off study;
never imported by the product.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import cae_codec


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path("../shared/data/kodak")
    bpp = float(argv[1]) if len(argv) > 1 else 0.3
    torch.set_num_threads(int(argv[2]) if len(argv) > 2 else 2)
    times, rates = [], []
    for path in sorted(folder.glob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB"))
        data = cae_codec.encode(image, codec="comcnn", bpp=bpp)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            cae_codec.decode(data)
            best = min(best, time.perf_counter() - start)
        times.append(best)
        rates.append(8 * len(data) / (image.shape[0] * image.shape[1]))
        print(f"{path.name}: {rates[-1]:.3f} bpp, decode {best:.3f} s", flush=True)
    load = os.getloadavg()[0]
    print(f"mean {np.mean(times):.3f} s, max {max(times):.3f} s, {np.mean(rates):.3f} bpp; load average {load:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
