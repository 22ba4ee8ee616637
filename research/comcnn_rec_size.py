"""What RecCNN's size costs in quality (docs/comcnn.md, "RecCNN's size: the quality it costs").

    OMP_NUM_THREADS=1 python research/comcnn_rec_size.py ../shared/data/kodak 10 50 -- \
        comcnn-jpeg runs/inner/rec-10x32.safetensors runs/inner/rec-20x64.safetensors

Every model given must share one ComCNN (the runs of the study start from comcnn-jpeg's and hold
it fixed: `caec train comcnn --init comcnn-jpeg --init-com-only --com-lr-scale 0`), so each Kodak
image's file at a JPEG quality holds the same compact image, of the same size, for every model:
the models differ only in how RecCNN restores it, compared at exactly equal bits. For each
image and quality: bpp, PSNR-RGB and MS-SSIM-RGB of every model's decoding, of the compact
image's bicubic upscale alone (no RecCNN), and each model's decode time (`codec.decode`, one
run, torch's threads as set). Prints a markdown table. One-off study; never imported by the
product.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cae_codec import comcnn, container
from cae_codec.comcnn.network import upscale
from cae_codec.evaluate.metrics import ms_ssim_rgb, psnr_rgb


def main(argv: list[str]) -> int:
    split = argv.index("--")
    folder, qualities, models = Path(argv[0]), [int(q) for q in argv[1:split]], argv[split + 1 :]
    codecs = {m: comcnn.load(m, "cpu") for m in models}
    first = codecs[models[0]]
    rows: dict[tuple[int, str], list[tuple[float, float, float, float]]] = {}
    load = os.getloadavg()
    for path in sorted(folder.glob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB"))
        pixels = image.shape[0] * image.shape[1]
        analysis = first.analyse(image)
        for m, codec in codecs.items():  # the same ComCNN: the same compact image
            assert np.array_equal(codec.analyse(image).compact, analysis.compact), m
        for q in qualities:
            for m, codec in codecs.items():
                data = codec.pack(analysis, q)
                t0 = time.perf_counter()
                out = codec.decode(container.parse(data))
                seconds = time.perf_counter() - t0
                rows.setdefault((q, m), []).append(
                    (8 * len(data) / pixels, psnr_rgb(image, out), ms_ssim_rgb(image, out), seconds)
                )
            box = container.parse(first.pack(analysis, q))
            compact = first.decoded_compact(box)
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(compact.transpose(2, 0, 1))).float().div(255)[None]
                up = upscale(x)[0].permute(1, 2, 0).numpy()[: image.shape[0], : image.shape[1]]
            plain = np.clip(np.round(up * 255), 0, 255).astype(np.uint8)
            bpp = 8 * len(first.pack(analysis, q)) / pixels
            rows.setdefault((q, "bicubic"), []).append((bpp, psnr_rgb(image, plain), ms_ssim_rgb(image, plain), 0.0))
        print(f"{path.name} done", file=sys.stderr, flush=True)
    print(f"Kodak ({len(rows[(qualities[0], models[0])])} images), torch threads {torch.get_num_threads()}, ")
    print(f"load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f}.\n")
    print("| JPEG quality | RecCNN (model) | bpp | PSNR-RGB | MS-SSIM-RGB | decode s/image (max) |")
    print("|---:|---|---:|---:|---:|---:|")
    for q in qualities:
        for m in ["bicubic", *models]:
            v = np.array(rows[(q, m)])
            times = "" if m == "bicubic" else f"{v[:, 3].mean():.2f} ({v[:, 3].max():.2f})"
            name = "none (bicubic x2 of the compact image)" if m == "bicubic" else Path(m).name
            print(f"| {q} | {name} | {v[:, 0].mean():.3f} | {v[:, 1].mean():.2f} | {v[:, 2].mean():.4f} | {times} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
