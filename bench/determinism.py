"""Does a .cae decode to the same pixels whatever the thread count?

    python bench/determinism.py --kodak ../shared/data/kodak --threads 1 2

Every Kodak image is encoded once; then each thread count decodes all the files in its
own process (torch.set_num_threads before anything runs) and saves the pixels and the
integers read from the JPEG2000 codestream. The report gives, per pair of thread counts,
the number of images and pixels that differ and the largest difference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"

CHILD = """
import sys
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[1]))
from cae_codec import api, container, j2k
work = Path(sys.argv[2])
for cae in sorted(work.glob("*.cae")):
    data = cae.read_bytes()
    np.save(work / f"{cae.stem}.px{sys.argv[1]}.npy", api.decode(data, device="cpu"))
    box = container.unpack(data)
    hd = box.header
    stride = api.get_codec(hd.model, "cpu").model.stride  # the model the file names
    q = j2k.read_components(box, hd.padded_height // stride, hd.padded_width // stride)
    np.save(work / f"{cae.stem}.q{sys.argv[1]}.npy", q)
print(torch.get_num_threads())
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quality", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = ap.parse_args()

    from cae_codec import api
    from cae_codec.imageio import open_image

    codec = api.get_codec(device="cpu")
    sources = sorted(args.kodak.glob("*.png"))[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for src in sources:
            (work / f"{src.stem}.cae").write_bytes(codec.encode(open_image(src), quality=args.quality))
        for t in args.threads:
            ran = subprocess.run([sys.executable, "-c", CHILD, str(t), str(work)], check=True, capture_output=True)
            print(f"decoded {len(sources)} files with {ran.stdout.decode().strip()} thread(s)")
        base = args.threads[0]
        for t in args.threads[1:]:
            images = pixels = worst = 0
            for src in sources:
                a = np.load(work / f"{src.stem}.px{base}.npy").astype(np.int16)
                b = np.load(work / f"{src.stem}.px{t}.npy").astype(np.int16)
                # lossless JPEG2000: the integers read from the file never depend on threads
                assert np.array_equal(np.load(work / f"{src.stem}.q{base}.npy"), np.load(work / f"{src.stem}.q{t}.npy"))
                differ = int(np.count_nonzero(a != b))
                images += differ > 0
                pixels += differ
                worst = max(worst, int(np.abs(a - b).max()))
            total = sum(np.load(work / f"{s.stem}.px{base}.npy").size for s in sources)
            print(
                f"{base} vs {t} threads: {images} of {len(sources)} images differ, "
                f"{pixels} of {total} samples, largest difference {worst}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
