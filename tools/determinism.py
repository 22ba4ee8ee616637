"""Does a .cae decode to the same pixels whatever the thread count?

    python tools/determinism.py --kodak ../shared/data/kodak --threads 1 2

Every Kodak image is encoded once; then each thread count decodes all the files in its
own process (torch.set_num_threads and the inference graphs' runtime.set_threads before
anything runs) and saves the pixels and the
integers read from the JPEG2000 codestream. The report gives, per pair of thread counts,
the number of images and pixels that differ and the largest difference. ``--versus-transposed``
also decodes with the image layer run as the transposed convolution it is stored as, instead
of its sub-pixel form (nn/layers.py): what decoders from before that change would show.
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
from cae_codec import api, container, runtime
runtime.set_threads(int(sys.argv[1]))  # the inference graphs' threads (the shipped models run them on the CPU)
from cae_codec.cae import payload
from cae_codec.nn.layers import UpConv
work, tag = Path(sys.argv[2]), sys.argv[1]
if sys.argv[3] == "transposed":
    UpConv.forward = torch.nn.ConvTranspose2d.forward
    tag += "t"
for cae in sorted(work.glob("*.cae")):
    data = cae.read_bytes()
    np.save(work / f"{cae.stem}.px{tag}.npy", api.decode(data, device="cpu"))
    box = container.parse(data)
    p = payload.params(box)
    stride = api.get_codec(api.file_model(box).path, "cpu").model.stride  # the model that made the file
    q = payload.read_components(box, p, p.padded_height // stride, p.padded_width // stride)
    np.save(work / f"{cae.stem}.q{tag}.npy", q)
print(torch.get_num_threads())
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quality", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--versus-transposed", action="store_true", help="also compare with the transposed image layer")
    args = ap.parse_args(argv)

    from cae_codec import api
    from cae_codec.imageio import open_image

    codec = api.get_codec(device="cpu")
    sources = sorted(args.kodak.glob("*.png"))[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for src in sources:
            (work / f"{src.stem}.cae").write_bytes(codec.encode(open_image(src), quality=args.quality))
        runs = [(str(t), "subpixel") for t in args.threads]
        runs += [(str(args.threads[0]), "transposed")] if args.versus_transposed else []
        for t, layer in runs:
            ran = subprocess.run([sys.executable, "-c", CHILD, t, str(work), layer], capture_output=True)
            if ran.returncode != 0:
                print(f"determinism: error: decoding with {t} thread(s) failed:", file=sys.stderr)
                print(ran.stderr.decode().strip(), file=sys.stderr)
                return 1
            print(f"decoded {len(sources)} files with {ran.stdout.decode().strip()} thread(s), {layer} image layer")
        base = str(args.threads[0])
        others = [str(t) for t in args.threads[1:]] + ([f"{base}t"] if args.versus_transposed else [])
        for t in others:
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
            what = (
                f"{base} vs {t} threads"
                if not t.endswith("t")
                else f"sub-pixel vs transposed image layer ({base} thread)"
            )
            print(
                f"{what}: {images} of {len(sources)} images differ, "
                f"{pixels} of {total} samples, largest difference {worst}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
