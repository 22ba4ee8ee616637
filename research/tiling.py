"""Do 128x128 tiles cost quality? The shipped tiled pipeline against one whole-image pass.

Same model, same quantization step, same JPEG 2000 coding of the latent; the only change is
whether the CAE sees independent 128x128 tiles (what caec does, bounded memory) or the whole
padded image at once (no tile boundaries). Prints mean bpp and PSNR-RGB per step.
Usage: python research/tiling.py --model cae-gdn-v1 --images 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.cae import payload
from cae_codec.cae.codec import Analysis, FamilyCodec
from cae_codec.evaluate.metrics import psnr_rgb
from cae_codec.imageio import open_image
from cae_codec.stages import quant
from cae_codec.stages.color import rgb_to_ycbcr, ycbcr_to_rgb
from cae_codec.stages.tiling import pad_edge, padded_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--qualities", default="2,4,6,8")
    args = ap.parse_args()
    torch.set_num_threads(1)
    codec = get_codec(args.model, "cpu")
    files = sorted(args.dataset.glob("*.png"))[: args.images]
    print("quality  tiled bpp  tiled PSNR  whole bpp  whole PSNR")
    for q in (int(v) for v in args.qualities.split(",")):
        step = quant.step_for_quality(q)
        tb, tp, wb, wp = [], [], [], []
        for f in files:
            img = open_image(f)[:, :, :3]
            h, w = img.shape[:2]
            data = codec.pack(codec.analyse(img), step)
            # the whole-image pass runs the model that wrote the file (a family: its member) at its step
            plain, step_used = codec.at(step) if isinstance(codec, FamilyCodec) else (codec, step)
            tb.append(8 * len(data) / (h * w))
            tp.append(psnr_rgb(img, codec.decode(container.parse(data))))
            ph, pw = padded_size(h, w)
            with torch.inference_mode():
                x = torch.from_numpy(pad_edge(img.transpose(2, 0, 1).copy(), ph, pw))[None].float() / 255
                y = plain.net.encode(rgb_to_ycbcr(x))
                z = torch.einsum("bmhw,mk->bkhw", y - plain.mean.view(1, -1, 1, 1), plain.basis)[0].numpy()
                # the whole-image latent packed as the codec packs a tiled one: same quantizer and coding
                whole_file = plain.pack(Analysis(z, h, w, 3, (ph, pw), None), step_used)
                whole = container.parse(whole_file)
                params = payload.params(whole)
                ints = np.zeros(z.shape, np.float32)
                ints[: params.components] = payload.read_components(whole, params, *z.shape[1:])
                yq = torch.from_numpy(ints)[None] * params.step
                yh = torch.einsum("bkhw,mk->bmhw", yq, plain.basis) + plain.mean.view(1, -1, 1, 1)
                rec = (ycbcr_to_rgb(plain.net.decode(yh, params.step)).clamp(0, 1) * 255).round()[0, :, :h, :w]
            wb.append(8 * len(whole_file) / (h * w))
            wp.append(psnr_rgb(img, rec.permute(1, 2, 0).numpy().astype(np.uint8)))
        print(f"{q:7d}  {np.mean(tb):9.3f}  {np.mean(tp):10.2f}  {np.mean(wb):9.3f}  {np.mean(wp):10.2f}", flush=True)


if __name__ == "__main__":
    main()
