"""Why the recurrent codec's quality stops improving after a few passes (issue 16, docs/rnn.md).

For each model: random 32x32 crops of Kodak images (not training images) coded through all
passes by the network itself (no file), and per pass: the L1 error of the residual after the
pass (8-bit units) with the binarizer's training noise (random signs) and without it (the
codec's sign), the share of the binarizer's inputs near zero (|code| < 0.2: bits that are
mostly noise in training), the mean |output| of the decoder (8-bit units; what the pass adds,
divided by the gain in `scaled` mode) and the mean gain of residual scaling. With ``--whole N``,
also the PSNR-RGB after each pass (the network's own reconstruction, not rounded to 8 bits) of the
first N images (cut to multiples of 32) coded whole, and of the same images cut into 32x32 tiles
coded one by one, as the network was trained: a network that learned on 32x32 crops, whose
2x2 bottleneck is all border, may code whole images worse than their tiles.

    python -m research.rnn_saturation MODEL [MODEL ...] [--crops 256] [--images DIR] [--whole N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
KODAK = REPO.parent / "shared" / "data" / "kodak"


def crops(folder: Path, count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    from cae_codec import trainkit
    from cae_codec.imageio import read_image_rgb8

    images = [read_image_rgb8(f) for f in trainkit.list_images(folder)]
    sampler = trainkit.PatchSampler(images, size, torch.device("cpu"))
    return sampler.sample(count, torch.Generator().manual_seed(seed))


@torch.no_grad()
def per_pass(net: Any, x: torch.Tensor, stochastic: bool) -> dict[str, list[float]]:
    gen = torch.Generator().manual_seed(1)
    target = x - 0.5
    enc, dec = net.encoder_state(target), None
    recon = torch.zeros_like(target)
    rows: dict[str, list[float]] = {"l1": [], "near0": [], "out": [], "gain": []}
    for t in range(net.config.passes):
        gain = net.gain_for(recon, t)
        residual = target - recon
        codes, enc = net.encode_step(residual if gain is None else residual * gain, enc)
        bits = net.binarize(codes, stochastic, gen)
        if dec is None:
            dec = net.decoder_state(bits)
        out, dec = net.decode_step(bits, dec)
        recon = net.next_reconstruction(recon, out, gain)
        rows["l1"].append(float((target - recon).abs().mean()) * 255)
        rows["near0"].append(float((codes.abs() < 0.2).float().mean()))
        rows["out"].append(float(out.abs().mean()) * 255)
        rows["gain"].append(float(gain.mean()) if gain is not None else 1.0)
    return rows


@torch.no_grad()
def whole_and_tiles(net: Any, folder: Path, count: int) -> tuple[list[float], list[float]]:
    """Mean PSNR-RGB after each pass: the first ``count`` images coded whole, and as 32x32 tiles."""
    from cae_codec import trainkit
    from cae_codec.imageio import read_image_rgb8

    whole, tiles = [], []
    for f in trainkit.list_images(folder)[:count]:
        img = read_image_rgb8(f)[:, :, :3]
        h, w = img.shape[0] // 32 * 32, img.shape[1] // 32 * 32
        x = torch.from_numpy(img[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255
        cut = x.unfold(2, 32, 32).unfold(3, 32, 32).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, 32, 32)
        for out, batch in ((whole, x), (tiles, cut)):
            out.append([-10 * float(torch.log10((r**2).mean())) for r in net(batch, None, None)])
    return [sum(c) / len(c) for c in zip(*whole, strict=True)], [sum(c) / len(c) for c in zip(*tiles, strict=True)]


def table(name: str, noisy: dict[str, list[float]], exact: dict[str, list[float]]) -> str:
    n = len(exact["l1"])
    head = "| " + name + " | " + " | ".join(str(i + 1) for i in range(n)) + " |"
    lines = [head, "|---" * (n + 1) + "|"]

    def row(label: str, values: list[float], fmt: str) -> str:
        return f"| {label} | " + " | ".join(format(v, fmt) for v in values) + " |"

    lines.append(row("L1 after the pass, random signs (training)", noisy["l1"], ".1f"))
    lines.append(row("L1 after the pass, sign (the codec)", exact["l1"], ".1f"))
    lines.append(row("codes with abs < 0.2", exact["near0"], ".2f"))
    lines.append(row("mean abs decoder output", exact["out"], ".1f"))
    lines.append(row("mean gain", exact["gain"], ".2f"))
    if "whole" in exact:
        lines.append(row("PSNR-RGB, whole images", exact["whole"], ".2f"))
        lines.append(row("PSNR-RGB, the same in 32x32 tiles", exact["tiles"], ".2f"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rnn_saturation", description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="rnn weights files or names")
    ap.add_argument("--crops", type=int, default=256)
    ap.add_argument("--images", type=Path, default=KODAK)
    ap.add_argument("--whole", type=int, default=0, help="also PSNR of the first N images, whole and in tiles")
    args = ap.parse_args(argv)
    from cae_codec.errors import CaecError
    from cae_codec.weights import load_model

    torch.set_num_threads(1)
    try:
        if args.crops < 1:
            raise CaecError("--crops must be at least 1")
        x = crops(args.images, args.crops)
        for model in args.models:
            net = load_model(model).network.eval()
            exact = per_pass(net, x, False)
            if args.whole > 0:
                exact["whole"], exact["tiles"] = whole_and_tiles(net, args.images, args.whole)
            print(table(Path(model).name.removesuffix(".safetensors"), per_pass(net, x, True), exact))
            print()
    except CaecError as e:
        print(f"rnn_saturation: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
