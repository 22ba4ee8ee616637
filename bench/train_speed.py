"""Training-step throughput of candidate CAE sizes on this machine (used to size the shipped model).

Times forward + backward + Adam on random 64x64 crops (batch 16), plain and channels_last,
and prints 128x128-patch equivalents per second. Usage: python bench/train_speed.py
"""

from __future__ import annotations

import time

import torch

from cae_codec.nn.cae import CAE, CAEConfig, macs_per_pixel

CANDIDATES = [
    CAEConfig(hidden=64, latent=96, stages=4),
    CAEConfig(hidden=48, latent=64, stages=4),
    CAEConfig(hidden=64, latent=48, stages=3),
    CAEConfig(hidden=64, latent=96, stages=4, kernel=3),
]


def main(patch: int = 64, batch: int = 16, steps: int = 6) -> None:
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    for cfg in CANDIDATES:
        for channels_last in (False, True):
            model = CAE(cfg)
            opt = torch.optim.Adam(model.parameters(), 1e-4)
            x = torch.rand(batch, 3, patch, patch)
            side = patch // cfg.stride
            noise = torch.rand(batch, cfg.latent, side, side) - 0.5
            if channels_last:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                x = x.contiguous(memory_format=torch.channels_last)
            for i in range(steps):
                if i == 2:  # the first steps warm up oneDNN's kernel choice
                    t0 = time.perf_counter()
                x_hat, bits = model(x, noise)
                loss = ((x_hat - x) ** 2).mean() + 1e-6 * bits.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            per_step = (time.perf_counter() - t0) / (steps - 2)
            rate = batch * patch * patch / 128**2 / per_step
            layout = "channels_last" if channels_last else "contiguous"
            print(f"{cfg}  {layout:13s}  {rate:6.1f} patch128/s  {macs_per_pixel(cfg):6.0f} MAC/px", flush=True)


if __name__ == "__main__":
    main()
