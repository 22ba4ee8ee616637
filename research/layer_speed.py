"""Where the network's CPU time goes: every layer of a model's encoder and decoder, timed alone.

A batch of tiles is encoded once; then each layer is timed on the input it really gets,
rounds alternating between layers (the fastest round is kept, as a shared machine slows
some rounds down). Each of the decoder's transposed convolutions is timed both as the
transposed convolution it is stored as and in its sub-pixel form (nn/layers.py), to show
which form suits which layer. Usage: python research/layer_speed.py --model cae-gdn-v3-high
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from cae_codec.nn.layers import UpConv
from cae_codec.weights import load_model


def fastest(fn: Callable[[], object], rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def as_transposed(layer: UpConv, x: torch.Tensor) -> torch.Tensor:
    return torch.nn.ConvTranspose2d.forward(layer, x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cae-gdn-v3-high", help="a model (not a family): its band-0 decoder is timed")
    ap.add_argument("--tiles", type=int, default=16, help="128x128 tiles per batch (the codec's batch)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.tiles < 1 or args.rounds < 1 or args.threads < 1:
        raise SystemExit("layer_speed: --tiles, --rounds and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as in the codec: GDN makes subnormal floats
    net = load_model(args.model).network.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.rand(args.tiles, 3, 128, 128).contiguous(memory_format=torch.channels_last)
    rows: list[tuple[str, str, Callable[[], object]]] = []
    with torch.inference_mode():
        h = x - 0.5
        for i, layer in enumerate(net.encoder):
            rows.append((f"encoder {i} {type(layer).__name__}", str(tuple(h.shape[1:])), lambda f=layer, t=h: f(t)))
            h = layer(h)
        for i, layer in enumerate(net.decoders()[0]):
            shape = str(tuple(h.shape[1:]))
            if isinstance(layer, UpConv):
                used = "sub-pixel" if layer.subpixel else "transposed"
                forms = {"transposed": as_transposed, "sub-pixel": UpConv.subpixel_forward}
                for form, run in forms.items():
                    label = f"decoder {i} UpConv as {form}" + (" (what the codec runs)" if form == used else "")
                    rows.append((label, shape, lambda f=layer, t=h, r=run: r(f, t)))
            else:
                rows.append((f"decoder {i} {type(layer).__name__}", shape, lambda f=layer, t=h: f(t)))
            h = layer(h)
        times = {name: float("inf") for name, _, _ in rows}
        for _ in range(args.rounds):  # alternate: every layer sees the same slow and fast moments
            for name, _, fn in rows:
                times[name] = min(times[name], fastest(fn, 1))
    print(f"{args.model}, {args.tiles} tiles of 128x128, {args.threads} thread(s), fastest of {args.rounds} rounds\n")
    print("| layer | input (channels, height, width) | ms |")
    print("|---|---|---|")
    for name, shape, _ in rows:
        print(f"| {name} | {shape} | {times[name] * 1000:.1f} |")


if __name__ == "__main__":
    main()
