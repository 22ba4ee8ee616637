"""The CAE's layers: generalized divisive normalization (Balle et al. 2016), and the decoder's
stride-2 transposed convolution."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class GDN(nn.Module):
    """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); ``inverse=True`` multiplies (IGDN).

    beta and gamma are stored as square roots so that they stay non-negative under
    plain gradient steps; the small floor keeps the denominator away from zero.
    """

    def __init__(self, channels: int, inverse: bool = False, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_sqrt = nn.Parameter(torch.ones(channels))
        self.gamma_sqrt = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        beta = self.beta_sqrt.square() + 1e-6
        gamma = self.gamma_sqrt.square().view(c, c, 1, 1)
        # a divide by sqrt, not a multiply by rsqrt: timed alone one GDN layer was faster with
        # rsqrt, but the whole encoder was slower on a CPU, so the division stays
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm


def _phase_taps(kernel: int) -> tuple[torch.Tensor, int]:
    """For a stride-2 transposed convolution (padding kernel // 2, output padding 1): which of
    its kernel taps each output phase (0 = even, 1 = odd rows or columns) applies to the input
    at offsets -r..r from the output's own position, ``kernel`` where none does; and r."""
    pad = kernel // 2
    # output 2u + a takes input i through tap pad + a - 2 (i - u)
    offsets = {a: [d for d in range(-kernel, kernel + 1) if 0 <= pad + a - 2 * d < kernel] for a in (0, 1)}
    r = max(abs(d) for ds in offsets.values() for d in ds)
    taps = [[pad + a - 2 * d if d in offsets[a] else kernel for d in range(-r, r + 1)] for a in (0, 1)]
    return torch.tensor(taps), r


class UpConv(nn.ConvTranspose2d):
    """The decoder's stride-2 transposed convolution (output twice the input's size).

    With ``subpixel``, while its weights are not being trained (decoding, refinement, a frozen
    decoder), it runs as the same operator written as an ordinary convolution to four times
    the channels followed by a pixel shuffle (Shi et al. 2016): one phase of the output grid
    per group of channels. The sums are the same; the order of the additions differs, so the
    output agrees to float rounding (about 1e-6). The image layer, with 3 output channels,
    vectorizes poorly as a transposed convolution on a CPU and runs twice as fast this way;
    layers with many output channels are faster as they are, so only that layer sets it.
    Parameters and their names are ConvTranspose2d's: weights files are unchanged.
    """

    taps: torch.Tensor  # a buffer (moves with the module), not a parameter: not in weights files

    def __init__(self, cin: int, cout: int, kernel: int, subpixel: bool = False) -> None:
        super().__init__(cin, cout, kernel, stride=2, padding=kernel // 2, output_padding=1)
        self.subpixel = subpixel and kernel % 2 == 1  # an even kernel's grid is not _up's 2x
        taps, self.radius = _phase_taps(kernel)
        self.register_buffer("taps", taps, persistent=False)

    def subpixel_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The equivalent convolution's weight (4 * out, in, 2r+1, 2r+1), channel 4c + 2a + b
        being output channel c at row phase a and column phase b, and its bias."""
        w = F.pad(self.weight, (0, 1, 0, 1))  # tap index ``kernel`` reads a zero
        t = self.taps
        phases = w[:, :, t[:, None, :, None], t[None, :, None, :]]  # (in, out, a, b, 2r+1, 2r+1)
        side = 2 * self.radius + 1
        kernel = phases.permute(1, 2, 3, 0, 4, 5).reshape(4 * self.out_channels, self.in_channels, side, side)
        assert self.bias is not None
        return kernel, self.bias.repeat_interleave(4)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not self.subpixel or output_size is not None or (torch.is_grad_enabled() and self.weight.requires_grad):
            return super().forward(x, output_size)
        return self.subpixel_forward(x)

    def subpixel_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer in its sub-pixel form, whatever ``subpixel`` says (research/layer_speed.py)."""
        kernel, bias = self.subpixel_kernel()
        if x.is_contiguous(memory_format=torch.channels_last):
            kernel = kernel.contiguous(memory_format=torch.channels_last)
        return F.pixel_shuffle(F.conv2d(x, kernel, bias, padding=self.radius), 2)
