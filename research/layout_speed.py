"""CPU time of the CAE's encoder + decoder for candidate hidden-width layouts (issue 4: capacity
within the speed budget), before any training: a layout's speed does not depend on its weights.

Each layout runs on the 24 tiles of one 768x512 image, in the codec's batches, one thread,
channels_last; the layouts take turns in each of --repeats rounds and the fastest round counts.
The network is most of caec's time; the rest (PCA, quantization, JPEG 2000, I/O) does not
change with the layout, so the last column estimates `make bench`'s ratio of means for the
layout from the measured one (docs/bench.json), taking the first layout as the one bench ran.

A layout ENC/DEC gives the encoder and the decoder their own widths (``--decoder-hidden``).

Usage: python research/layout_speed.py 64 32,64,192 48,96,160 32,64,128/64,96,192 [--latent 192]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from cae_codec.cae.codec import BATCH_TILES
from cae_codec.cae.network import CAE, CAEConfig, macs_per_pixel

TILES = 24  # a 768x512 Kodak image


def network_seconds(configs: list[CAEConfig], repeats: int) -> list[float]:
    """Fastest encode + decode of TILES tiles per layout; the layouts take turns in every round,
    so that a slow spell of a shared machine hits all of them alike."""
    torch.manual_seed(0)
    nets = [CAE(c).eval().to(memory_format=torch.channels_last) for c in configs]  # type: ignore[call-overload]
    x = torch.rand(TILES, 3, 128, 128).contiguous(memory_format=torch.channels_last)
    best = [float("inf")] * len(nets)
    with torch.inference_mode():
        for _ in range(repeats):
            for j, net in enumerate(nets):
                t = time.perf_counter()
                for i in range(0, TILES, BATCH_TILES):
                    net.decode(net.encode(x[i : i + BATCH_TILES]))
                best[j] = min(best[j], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "layouts",
        nargs="+",
        help="hidden widths: one, or one per stage boundary (e.g. 32,64,192); ENC/DEC for a decoder of its own",
    )
    ap.add_argument("--latent", type=int, default=192)
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--bench", type=Path, default=Path("docs/bench.json"), help="make bench's measured times")
    args = ap.parse_args()
    torch.set_num_threads(1)
    configs = []
    for text in args.layouts:
        try:
            parts = [tuple(int(v) for v in part.split(",")) for part in text.split("/")]
        except ValueError:
            raise SystemExit(f"layout {text!r}: widths are integers separated by commas") from None
        if len(parts) > 2:
            raise SystemExit(f"layout {text!r}: at most one '/' (encoder/decoder widths)")
        hidden, decoder = [w[0] if len(w) == 1 else w for w in parts] + [None] * (2 - len(parts))
        try:
            configs.append(CAEConfig(3, hidden, args.latent, args.stages, decoder_hidden=decoder))
        except ValueError as e:
            raise SystemExit(f"layout {text!r}: {e}") from None
    summary = json.loads(args.bench.read_text())["summary"]
    mean = summary["mean"]
    caec_s = mean["caec_encode_s"] + mean["caec_decode_s"]
    j2k_s = mean["jpeg2000_encode_s"] + mean["jpeg2000_decode_s"]
    seconds = network_seconds(configs, args.repeats)
    base = seconds[0]
    print(f"make bench ({summary['model']}): caec {caec_s:.3f} s, OpenJPEG {j2k_s:.3f} s per image")
    print("| hidden widths | MAC/pixel | network s/image | vs first | estimated make bench ratio |")
    print("|---|---|---|---|---|")
    for cfg, s in zip(configs, seconds, strict=True):
        est = (caec_s - base + s) / j2k_s
        name = f"{cfg.hidden}" if cfg.decoder_hidden is None else f"{cfg.hidden} / {cfg.decoder_hidden}"
        print(f"| {name} | {macs_per_pixel(cfg):,.0f} | {s:.3f} | {s / base:.2f}x | {est:.2f} |", flush=True)


if __name__ == "__main__":
    main()
