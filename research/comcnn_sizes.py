"""RecCNN's size for comcnn (docs/comcnn.md): training speed and decode time of a few sizes.

    python research/comcnn_sizes.py 2        # torch threads

For each RecCNN (layers x channels): crops of 64x64 trained per second (batch 16, ComCNN and
RecCNN, forward and backward, Adam), and RecCNN's time on a 768x512 output (one Kodak image) in
inference. Random data: only the speed is measured. One-off study; never imported by the product.
"""

from __future__ import annotations

import sys
import time

import torch

from cae_codec.comcnn.network import ComCnnConfig, ComRecPair

SIZES = [(10, 32), (8, 32), (12, 48), (20, 64)]


def main(argv: list[str]) -> int:
    torch.set_num_threads(int(argv[0]) if argv else 2)
    for layers, width in SIZES:
        net = ComRecPair(ComCnnConfig(3, layers, width))
        opt = torch.optim.Adam(net.parameters())
        x = torch.rand(16, 3, 64, 64)

        def step() -> None:
            loss = ((net.reconstruct(net.compact(x)) - x) ** 2).mean()  # noqa: B023 (this loop's net)
            opt.zero_grad()  # noqa: B023
            loss.backward()
            opt.step()  # noqa: B023

        step()
        t0 = time.perf_counter()
        for _ in range(3):
            step()
        train = 16 * 3 / (time.perf_counter() - t0)
        net.eval()
        with torch.no_grad():
            compact = torch.rand(1, 3, 256, 384)
            net.reconstruct(compact)
            t0 = time.perf_counter()
            net.reconstruct(compact)
            decode = time.perf_counter() - t0
        print(f"{layers}x{width}: train {train:.1f} crops64/s, RecCNN on 768x512 {decode:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
