"""Issue 20: tiles per network call. One Kodak image encoded and decoded by the shipped member
with each batch size, in turns; median and fastest of --rounds.

    python -m research.batch_tiles --image ../shared/data/kodak/kodim01.png --sizes 8,16,24,32
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from cae_codec import container, runtime, zoo
from cae_codec.cae.codec import CaePcaJ2kCodec
from cae_codec.imageio import open_image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, default=Path("../shared/data/kodak/kodim01.png"))
    ap.add_argument("--weights", default="cae-gdn-v3-low")
    ap.add_argument("--sizes", default="8,16,24,32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    runtime.set_threads(args.threads)
    path = zoo.catalogue().models[args.weights].path
    img = open_image(args.image)[:, :, :3]
    codecs = {int(b): CaePcaJ2kCodec(path, "cpu", batch_tiles=int(b)) for b in args.sizes.split(",")}
    data = next(iter(codecs.values())).encode(img, quality=3)
    for codec in codecs.values():  # warm-up: sessions made, buffers allocated
        codec.decode(container.parse(codec.encode(img, quality=3)))
    times: dict[int, list[float]] = {b: [] for b in codecs}
    for _ in range(args.rounds):
        for b, codec in codecs.items():
            t0 = time.perf_counter()
            codec.encode(img, quality=3)
            codec.decode(container.parse(data))
            times[b].append(time.perf_counter() - t0)
    for b, values in times.items():
        print(f"| {b} | {statistics.median(values):.3f} | {min(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
