"""Encode on a GPU, decode on the CPU: do the files still decode, and to what?

On the GPU host (no imagecodecs needed there):

    python research/gpu_cpu.py analyse IMAGES_DIR OUT.npz --model cae-gdn-v1

runs the encoder's network stage (``CaePcaJ2kCodec.analyse``) on CUDA and on the CPU for
each image and saves both PCA components. Back on a CPU machine:

    python research/gpu_cpu.py verify OUT.npz IMAGES_DIR

packs the GPU analyses into .cae files (JPEG 2000 is CPU code wherever the encoder runs),
decodes them on the CPU, and compares with files encoded wholly on the CPU: quantized
symbols that differ, file sizes, PSNR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.cae.codec import plain_codecs
from cae_codec.imageio import read_image_rgb8
from cae_codec.stages import quant


def analyse(images: Path, out: Path, model: str, device: str) -> None:
    # a family: every member's encoder is checked, each at the same steps
    gpus, cpus = plain_codecs(get_codec(model, device)), plain_codecs(get_codec(model, "cpu"))
    arrays: dict[str, np.ndarray] = {}
    name = torch.cuda.get_device_name() if device == "cuda" else device
    print(f"{name}, torch {torch.__version__}")
    for gpu, cpu in zip(gpus, cpus, strict=True):
        for path in sorted(images.glob("*.png")):
            img = read_image_rgb8(path)
            zg, zc = gpu.analyse(img).z, cpu.analyse(img).z
            key = f"{gpu.name}.{path.stem}"
            arrays[key] = zg
            for q in (1, 4, 8):
                step = float(np.float32(quant.step_for_quality(q)))
                differ = np.mean(quant.quantize(zg, step, 0.0) != quant.quantize(zc, step, 0.0))
                print(f"{key} q{q}: max |z_gpu - z_cpu| {np.abs(zg - zc).max():.2e}, symbols differing {differ:.2e}")
    np.savez_compressed(out, model=np.array(model), **arrays)


def verify(npz: Path, images: Path) -> None:
    from cae_codec.cae.codec import Analysis
    from cae_codec.evaluate.metrics import psnr_rgb

    data = np.load(npz)
    codecs = {c.name: c for c in plain_codecs(get_codec(str(data["model"]), "cpu"))}
    for name in sorted(k for k in data.files if k != "model"):
        member, stem = name.rsplit(".", 1)  # keys are MEMBER.IMAGE
        codec = codecs[member]
        img = read_image_rgb8(images / f"{stem}.png")
        cpu_a = codec.analyse(img)
        gpu_a = Analysis(data[name], cpu_a.height, cpu_a.width, cpu_a.channels, cpu_a.padded, None)
        for q in (1, 4, 8):
            step = quant.step_for_quality(q)
            f_gpu, f_cpu = codec.pack(gpu_a, step, q), codec.pack(cpu_a, step, q)
            r_gpu = codec.decode(container.parse(f_gpu))
            r_cpu = codec.decode(container.parse(f_cpu))
            print(
                f"{name} q{q}: bytes gpu {len(f_gpu)} cpu {len(f_cpu)}; "
                f"PSNR gpu-encoded {psnr_rgb(img, r_gpu):.3f} dB, cpu-encoded {psnr_rgb(img, r_cpu):.3f} dB"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("analyse")
    a.add_argument("images", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--model", default=DEFAULT_MODEL)
    a.add_argument("--device", default="cuda", help="the encoding device under test (cpu only to try the script)")
    v = sub.add_parser("verify")
    v.add_argument("npz", type=Path)
    v.add_argument("images", type=Path)
    args = ap.parse_args()
    if args.mode == "analyse":
        analyse(args.images, args.out, args.model, args.device)
    else:
        verify(args.npz, args.images)


if __name__ == "__main__":
    sys.exit(main())
