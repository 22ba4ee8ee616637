"""Speed of the rnn codec on CPU (issue 16): the encoder's analysis of a Kodak image (every pass),
and decoding, pass by pass, of its file of every pass (2 bpp before entropy coding for a model
of 16 passes of 1/8 bpp): the time up to each pass, the fastest of --rounds rounds.

    python -m research.rnn_speed --model rnn-gru-w8 --threads 2 --images 3

``--train-speed`` instead measures training steps (forward, backward, Adam; 16 passes unrolled,
batch 16, random crops; 3 timed steps after one) of the network sizes considered for training:
    python -m research.rnn_speed --train-speed --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from cae_codec import container
from cae_codec.imageio import read_image_rgb8
from cae_codec.rnn import load

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"


SIZES = {
    "1/8": ((8, 32, 64, 64), (64, 64, 64, 32, 16), "gru", "additive"),
    "1/4": ((16, 64, 128, 128), (128, 128, 128, 64, 32), "gru", "additive"),
    "1/4 low-res, 1/8 last decoder cells": ((16, 64, 128, 128), (128, 128, 128, 32, 16), "gru", "additive"),
    "1/8 lstm": ((8, 32, 64, 64), (64, 64, 64, 32, 16), "lstm", "additive"),
    "1/8 scaled": ((8, 32, 64, 64), (64, 64, 64, 32, 16), "gru", "scaled"),
}


def train_speed(passes: int = 16, batch: int = 16) -> None:
    from cae_codec.rnn.network import RecurrentCodec, RnnConfig

    for name, (enc, dec, cell, mode) in SIZES.items():
        net = RecurrentCodec(RnnConfig(encoder=enc, decoder=dec, cell=cell, mode=mode, passes=passes))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x = torch.rand(batch, 3, 32, 32)
        for i in range(4):
            if i == 1:
                t0 = time.perf_counter()
            loss = torch.stack([r.abs().mean() for r in net(x)]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        rate = 3 * batch / (time.perf_counter() - t0)
        params = sum(p.numel() for p in net.parameters())
        print(f"{name}: {params:,} parameters, {rate:.1f} crops/s (load average {os.getloadavg()[0]:.1f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--train-speed", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.train_speed:
        train_speed()
        return 0
    if not args.model:
        ap.error("give --model (or --train-speed)")
    codec = load(args.model, "cpu")
    load_before = os.getloadavg()[0]
    rows = []
    for path in sorted(KODAK.glob("kodim*.png"))[: args.images]:
        img = read_image_rgb8(path)
        best_enc, best_full, best_steps = float("inf"), float("inf"), [float("inf")] * codec.passes
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            a = codec.analyse(img)
            data = codec.pack(a, codec.passes)
            best_enc = min(best_enc, time.perf_counter() - t0)
            steps = codec.decode_passes(container.parse(data), every_pass=True)
            t0, cum = time.perf_counter(), []
            for _img in steps:
                cum.append(time.perf_counter() - t0)
            best_steps = [min(b, c) for b, c in zip(best_steps, cum, strict=True)]
            t0 = time.perf_counter()
            codec.decode(container.parse(data))  # what `caec decode` runs: the last pass's image only
            best_full = min(best_full, time.perf_counter() - t0)
        rows.append(
            {
                "image": path.stem,
                "bpp": 8 * len(data) / (img.shape[0] * img.shape[1]),
                "encode_s": best_enc,
                "decode_s": best_full,
                "decode_s_after_pass": best_steps,
            }
        )
        print(f"{path.stem}: encode {best_enc:.2f} s, decode {best_full:.2f} s ({len(data)} bytes)", flush=True)
    after = np.mean([r["decode_s_after_pass"] for r in rows], axis=0)
    result = {
        "model": args.model,
        "threads": args.threads,
        "torch": torch.__version__,
        "load_average_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "images": rows,
        "mean_encode_s": float(np.mean([r["encode_s"] for r in rows])),
        "mean_decode_s": float(np.mean([r["decode_s"] for r in rows])),
        "mean_decode_s_after_pass": after.tolist(),
        "mean_s_per_pass": float(after[-1] / len(after)),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "images"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
