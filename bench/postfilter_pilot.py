"""Pilot: can a small full-resolution filter after the decoder still gain anything?

A residual filter (3x3 conv to --channels, ReLU, 3x3 conv, ReLU, 3x3 conv to RGB, last layer
zero-initialised so it starts as the identity) runs on the stitched RGB decode, across the
128x128 tile edges, as a deblocking and restoration step would. It is trained on cached
pairs: 256x256 crops of training photos (four tiles each) and their decodes by one family
member at a log-uniform step of its band, quantized exactly as the codec quantizes
(PCA, dead zone). Then the same Kodak files are decoded with and without it.

It measured +0.000 dB (docs/experiments.md), so no filter ships and this stays a pilot.
Usage: python bench/postfilter_pilot.py --member cae-gdn-v3-high --step-min 0.177 --step-max 1.41
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from cae_codec import container, quant
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.codec import CaePcaJ2kCodec, FamilyCodec
from cae_codec.color import rgb_to_ycbcr, ycbcr_to_rgb
from cae_codec.errors import CaecError
from cae_codec.evaluate.metrics import psnr_rgb
from cae_codec.imageio import open_image
from cae_codec.train import list_images, quantized_latent

CROP = 256


class PostFilter(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 3, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x - 0.5)  # type: ignore[no-any-return]


@torch.inference_mode()
def decoded_crop(plain: CaePcaJ2kCodec, crop: np.ndarray, step: float) -> np.ndarray:
    """The codec's decode of a CROP x CROP crop (four tiles) at ``step``, stitched."""
    n = CROP // 128
    tiles = crop.reshape(n, 128, n, 128, 3).transpose(0, 2, 4, 1, 3).reshape(n * n, 3, 128, 128)
    x = rgb_to_ycbcr(torch.from_numpy(tiles.copy()).float() / 255)
    y_hat = quantized_latent(plain.net, x, plain.mean.view(1, -1, 1, 1), plain.basis, step)  # type: ignore[arg-type]  # plain.net is a CAE
    x = ycbcr_to_rgb(plain.net.decode(y_hat, step))  # type: ignore[operator]
    rgb = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return rgb.reshape(n, n, 3, 128, 128).transpose(0, 3, 1, 4, 2).reshape(CROP, CROP, 3)


def make_pairs(plain: CaePcaJ2kCodec, files: list[Path], count: int, steps: tuple[float, float], seed: int):
    rng = np.random.default_rng(seed)
    photos = [p for p in (open_image(f)[:, :, :3] for f in files) if min(p.shape[:2]) >= CROP]
    if not photos:
        raise CaecError(f"no training photo is at least {CROP}x{CROP}")
    originals = np.empty((count, CROP, CROP, 3), np.uint8)
    decodes = np.empty_like(originals)
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        y0, x0 = (int(rng.integers(s - CROP + 1)) for s in photo.shape[:2])
        originals[i] = photo[y0 : y0 + CROP, x0 : x0 + CROP]
        step = float(np.float32(math.exp(rng.uniform(math.log(steps[0]), math.log(steps[1])))))
        decodes[i] = decoded_crop(plain, originals[i], step)
    return originals, decodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--member", default="cae-gdn-v3-high", help="for a family: the member whose decodes to filter")
    ap.add_argument("--step-min", type=float, default=0.177)
    ap.add_argument("--step-max", type=float, default=1.41)
    ap.add_argument("--train", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--qualities", default="6,8,10")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        run(args)
    except CaecError as e:
        raise SystemExit(f"postfilter_pilot: {e}") from None


def run(args: argparse.Namespace) -> None:
    codec = get_codec(args.model, "cpu")
    plain = codec.members.get(args.member) if isinstance(codec, FamilyCodec) else codec
    if plain is None:
        raise CaecError(f"{args.member!r} is not a member of {codec.name} ({', '.join(codec.members)})")
    qualities = [int(q) for q in args.qualities.split(",")]
    member_steps = {}  # checked before the pairs and the training, which take minutes
    for quality in qualities:
        step = quant.step_for_quality(quality)
        member, member_steps[quality] = codec.at(step) if isinstance(codec, FamilyCodec) else (codec, step)
        if member is not plain:
            raise CaecError(f"quality {quality} is not served by {plain.name}")
    images = [open_image(f)[:, :, :3] for f in list_images(args.dataset)[: args.images]]
    t0 = time.time()
    originals, decodes = make_pairs(plain, list_images(args.train), args.pairs, (args.step_min, args.step_max), 0)
    print(f"{args.pairs} pairs in {time.time() - t0:.0f} s", flush=True)

    x_all = torch.from_numpy(originals).permute(0, 3, 1, 2)
    r_all = torch.from_numpy(decodes).permute(0, 3, 1, 2)
    net = PostFilter(args.channels)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    t0, it, gains = time.time(), 0, []
    while time.time() - t0 < args.minutes * 60:
        idx = torch.randint(len(x_all), (16,), generator=g)
        oy, ox = torch.randint(0, CROP - 128 + 1, (2,), generator=g).tolist()  # windows that cross tile edges
        x = x_all[idx, :, oy : oy + 128, ox : ox + 128].float() / 255
        r = r_all[idx, :, oy : oy + 128, ox : ox + 128].float() / 255
        if it % 2:
            x, r = x.flip(3), r.flip(3)
        for group in opt.param_groups:  # the last quarter at a quarter of the rate
            group["lr"] = 1e-3 if time.time() - t0 < args.minutes * 45 else 2.5e-4
        loss = ((net(r) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        gains.append(10 * math.log10(((r - x) ** 2).mean().item() / max(loss.item(), 1e-12)))
        it += 1
    print(f"{it} batches of 16 ({16 * it} crops); mean training gain of the last 200: {np.mean(gains[-200:]):+.3f} dB")

    print("| quality | PSNR decoded (dB) | PSNR filtered (dB) | gain (dB) |")
    print("|---|---|---|---|")
    for quality in qualities:
        before, after = [], []
        for img in images:
            rec = plain.decode(container.unpack(plain.pack(plain.analyse(img), member_steps[quality])))
            with torch.inference_mode():
                out = net(torch.from_numpy(rec).permute(2, 0, 1)[None].float() / 255)
            filtered = (out.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
            before.append(psnr_rgb(img, rec))
            after.append(psnr_rgb(img, filtered))
        gain = np.mean(after) - np.mean(before)
        print(f"| {quality} | {np.mean(before):.2f} | {np.mean(after):.2f} | {gain:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
