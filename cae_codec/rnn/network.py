"""The recurrent progressive autoencoder of Toderici et al. 2017 ("Full Resolution Image
Compression with Recurrent Neural Networks"), with its widths as a configuration.

Layout per pass (the paper's, widths configurable): encoder conv 3x3/2 -> three conv-RNN cells
at stride 2 (input kernel 3x3, hidden kernel 1x1); binarizer 1x1 conv -> tanh -> sign, giving
``bits`` bits per 16x16 block; decoder 1x1 conv -> four conv-RNN cells (hidden kernels 1, 1, 3,
3) with depth-to-space x2 after each -> 1x1 conv to RGB. The cells are conv-GRU or conv-LSTM.

Reconstruction frameworks (``mode``): ``oneshot`` (each pass's output is the whole image),
``additive`` (each pass adds a correction to the sum of the earlier ones) and ``scaled``
(additive, with the residual multiplied by a gain per 8x8 block before the encoder and the
decoder's output divided by it; the gain is a function of the reconstruction so far, so the
decoder computes it too). The network sees pixels in [-0.5, 0.5].

Architecture ``rnn-toderici`` (cae_codec.nn.registry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from cae_codec.nn.registry import register_architecture

ARCHITECTURE = "rnn-toderici"
CELLS = ("gru", "lstm")
MODES = ("oneshot", "additive", "scaled")
STRIDE = 16  # the encoder's total downsampling: one pass codes ``bits`` bits per 16x16 block
GAIN_BLOCK = 8  # the residual scaling's gain is one value per 8x8 block
MAX_WIDTH = 1024
MAX_BITS = 256
# the paper's widths: encoder conv 64, cells 256, 512, 512; decoder conv 512, cells 512, 512, 256, 128
PAPER_ENCODER = (64, 256, 512, 512)
PAPER_DECODER = (512, 512, 512, 256, 128)
DECODER_HIDDEN_KERNELS = (1, 1, 3, 3)

State = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class RnnConfig:
    encoder: tuple[int, int, int, int] = (8, 32, 64, 64)
    decoder: tuple[int, int, int, int, int] = (64, 64, 64, 32, 16)
    bits: int = 32  # per 16x16 block and pass: 32 is 1/8 bit per pixel
    cell: str = "gru"
    mode: str = "additive"
    passes: int = 16  # passes the model was trained for: the most a file may hold

    def __post_init__(self) -> None:
        if len(self.encoder) != 4 or len(self.decoder) != 5:
            raise ValueError("encoder takes 4 widths, decoder 5")
        if not all(0 < w <= MAX_WIDTH for w in (*self.encoder, *self.decoder)):
            raise ValueError(f"widths must be 1..{MAX_WIDTH}")
        if any(w % 4 for w in self.decoder[1:]):
            raise ValueError("the decoder's cell widths must be multiples of 4 (depth-to-space x2)")
        if not 0 < self.bits <= MAX_BITS:
            raise ValueError(f"bits must be 1..{MAX_BITS}")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if not 0 < self.passes <= 64:
            raise ValueError("passes must be 1..64")


class ConvRnnCell(nn.Module):
    """A convolutional GRU or LSTM: gates from a conv of the input and a conv of the state."""

    def __init__(self, cell: str, cin: int, hidden: int, stride: int, hidden_kernel: int) -> None:
        super().__init__()
        self.cell, self.hidden, self.stride = cell, hidden, stride
        gates = 3 if cell == "gru" else 4
        self.conv_x = nn.Conv2d(cin, gates * hidden, 3, stride, 1)
        self.conv_h = nn.Conv2d(hidden, gates * hidden, hidden_kernel, 1, hidden_kernel // 2, bias=False)

    def zero_state(self, batch: int, height: int, width: int, like: torch.Tensor) -> State:
        h = like.new_zeros(batch, self.hidden, height, width)
        return (h,) if self.cell == "gru" else (h, h.clone())

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        gx = self.conv_x(x)
        gh = self.conv_h(state[0])
        if self.cell == "gru":
            xz, xr, xn = gx.chunk(3, 1)
            hz, hr, hn = gh.chunk(3, 1)
            z = torch.sigmoid(xz + hz)
            r = torch.sigmoid(xr + hr)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * state[0]
            return h, (h,)
        i, f, g, o = (gx + gh).chunk(4, 1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class GainEstimator(nn.Module):
    """The residual scaling's gain per 8x8 block from the reconstruction so far (>= 1: a residual
    is only ever magnified before the encoder)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(4, width, 3, 2, 1),
            nn.ELU(),
            nn.Conv2d(width, width, 3, 2, 1),
            nn.ELU(),
            nn.Conv2d(width, 1, 3, 2, 1),
        )

    def forward(self, recon: torch.Tensor, progress: torch.Tensor) -> torch.Tensor:
        # the residual itself is not known to the decoder: the gain is estimated from what it
        # knows, the reconstruction so far and how many passes made it (``progress``, a fourth plane)
        g = self.net(torch.cat([recon, progress.expand_as(recon[:, :1])], 1))
        g = 1 + F.softplus(g)
        return F.interpolate(g, scale_factor=GAIN_BLOCK, mode="nearest")


@register_architecture(ARCHITECTURE)
class RecurrentCodec(nn.Module):
    def __init__(self, config: RnnConfig) -> None:
        super().__init__()
        self.config = config
        e, d, cell = config.encoder, config.decoder, config.cell
        self.enc_conv = nn.Conv2d(3, e[0], 3, 2, 1)
        self.enc_cells = nn.ModuleList(ConvRnnCell(cell, e[i], e[i + 1], 2, 1) for i in range(3))
        self.binarizer = nn.Conv2d(e[3], config.bits, 1)
        self.dec_conv = nn.Conv2d(config.bits, d[0], 1)
        ins = [d[0]] + [w // 4 for w in d[1:4]]
        self.dec_cells = nn.ModuleList(
            ConvRnnCell(cell, ins[i], d[i + 1], 1, DECODER_HIDDEN_KERNELS[i]) for i in range(4)
        )
        self.to_rgb = nn.Conv2d(d[4] // 4, 3, 1)
        with torch.no_grad():
            # additive passes start as small corrections: an untrained pass adds little noise
            self.to_rgb.weight.mul_(0.1)
            nn.init.zeros_(self.to_rgb.bias)  # type: ignore[arg-type]
        self.gain = GainEstimator() if config.mode == "scaled" else None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RecurrentCodec:
        return cls(
            RnnConfig(
                encoder=tuple(int(v) for v in config["encoder"]),  # type: ignore[arg-type]
                decoder=tuple(int(v) for v in config["decoder"]),  # type: ignore[arg-type]
                bits=int(config["bits"]),
                cell=str(config["cell"]),
                mode=str(config["mode"]),
                passes=int(config["passes"]),
            )
        )

    def config_dict(self) -> dict[str, Any]:
        d = asdict(self.config)
        d["encoder"], d["decoder"] = list(self.config.encoder), list(self.config.decoder)
        return d

    # -- states -------------------------------------------------------------------------------

    def encoder_state(self, x: torch.Tensor) -> list[State]:
        b, _, h, w = x.shape
        cells: list[ConvRnnCell] = list(self.enc_cells)  # type: ignore[arg-type]
        return [c.zero_state(b, h >> (i + 2), w >> (i + 2), x) for i, c in enumerate(cells)]

    def decoder_state(self, codes: torch.Tensor) -> list[State]:
        b, _, h, w = codes.shape
        cells: list[ConvRnnCell] = list(self.dec_cells)  # type: ignore[arg-type]
        return [c.zero_state(b, h << i, w << i, codes) for i, c in enumerate(cells)]

    # -- one pass ------------------------------------------------------------------------------

    def encode_step(self, residual: torch.Tensor, state: list[State]) -> tuple[torch.Tensor, list[State]]:
        """(B, 3, H, W) residual (H, W multiples of 16) -> pre-sign codes in (-1, 1), (B, bits, H/16, W/16)."""
        x = self.enc_conv(residual)
        new = []
        for cell, s in zip(self.enc_cells, state, strict=True):
            x, s2 = cell(x, s)
            new.append(s2)
        return torch.tanh(self.binarizer(x)), new

    def decode_step(self, bits: torch.Tensor, state: list[State]) -> tuple[torch.Tensor, list[State]]:
        """(B, bits, h, w) in {-1, +1} -> (B, 3, 16h, 16w) this pass's output."""
        x = self.dec_conv(bits)
        new = []
        for cell, s in zip(self.dec_cells, state, strict=True):
            x, s2 = cell(x, s)
            new.append(s2)
            x = F.pixel_shuffle(x, 2)
        return torch.tanh(self.to_rgb(x)) * 0.5, new

    def gain_for(self, recon: torch.Tensor, index: int) -> torch.Tensor | None:
        """The residual scaling's gain at pass ``index`` (0-based), or None in other modes."""
        if self.gain is None:
            return None
        where = recon.new_full((1, 1, 1, 1), index / self.config.passes)
        return self.gain(recon, where)

    @staticmethod
    def binarize(codes: torch.Tensor, stochastic: bool, gen: torch.Generator | None = None) -> torch.Tensor:
        """sign(codes) in {-1, +1} (0 -> +1); in training a random sign with mean ``codes``,
        passing the gradient straight through (Toderici et al.)."""
        if stochastic:
            u = torch.rand(codes.shape, generator=gen, device=codes.device)
            b = torch.where(u < (1 + codes) / 2, 1.0, -1.0)
            return codes + (b - codes).detach()
        return torch.where(codes >= 0, 1.0, -1.0).to(codes.dtype)

    def next_reconstruction(self, recon: torch.Tensor, out: torch.Tensor, gain: torch.Tensor | None) -> torch.Tensor:
        """The reconstruction (network scale, [-0.5, 0.5]) after a pass whose output is ``out``."""
        if self.config.mode == "oneshot":
            return out
        return recon + (out if gain is None else out / gain)

    def forward(
        self, x: torch.Tensor, passes: int | None = None, gen: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Training: all passes unrolled over ``x`` (pixels in [0, 1]); the residual after each
        pass (network scale)."""
        target = x - 0.5
        enc = self.encoder_state(target)
        dec: list[State] | None = None
        recon = torch.zeros_like(target)
        residuals = []
        for t in range(passes or self.config.passes):
            gain = self.gain_for(recon.detach(), t)
            residual = target - recon
            codes, enc = self.encode_step(residual if gain is None else residual * gain, enc)
            bits = self.binarize(codes, self.training, gen)
            if dec is None:
                dec = self.decoder_state(bits)
            out, dec = self.decode_step(bits, dec)
            recon = self.next_reconstruction(recon, out, gain)
            residuals.append(target - recon)
        return residuals
