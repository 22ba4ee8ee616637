"""The CAE's configuration, as its weights files record it: plain data, without torch, so that
the codec can size its work and pick a band's decoder from a weights file's header alone."""

from __future__ import annotations

from dataclasses import dataclass, field

# the densities cae_codec.nn.density defines (its DENSITIES' keys; a test holds them equal)
DENSITY_NAMES = ("laplace", "factorized")
# the inference graphs of a CAE model (cae_codec.runtime): the encoder, and one decoder per rate band
ENCODER_PART = "encoder"


def decoder_part(band: int) -> str:
    """The graph of band ``band``'s decoder: ``decoder`` for band 0 (the one decoder of a
    single-decoder model), ``decoder-1``... for the others."""
    return "decoder" if band == 0 else f"decoder-{band}"


@dataclass(frozen=True)
class CAEConfig:
    in_channels: int = 3
    # channels of the hidden feature maps: one width for all, or one per stage boundary from
    # the finest to the coarsest (stages - 1 of them); the decoder mirrors the encoder
    hidden: int | tuple[int, ...] = 64
    latent: int = 96
    stages: int = 4
    kernel: int = 5
    density: str = "laplace"
    # ascending step boundaries: band 0 (the main ``decoder``) takes steps below the first, band
    # i the steps from boundary i-1 up; empty for a single decoder
    decoder_bands: tuple[float, ...] = field(default=())
    # the decoder's own widths, the same way (fine to coarse), when it is not the encoder's
    # mirror: the encoder and the decoder each bound the high rates, by different amounts
    # (docs/experiments.md, "Whose ceiling are the high rates?"), so each may be widened alone
    decoder_hidden: int | tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.density not in DENSITY_NAMES:
            raise ValueError(f"CAE config density={self.density!r} is not one of {', '.join(DENSITY_NAMES)}")
        bands = tuple(float(b) for b in self.decoder_bands)  # JSON gives a list
        if len(bands) > 8 or any(not 0 < b < 1e4 for b in bands) or list(bands) != sorted(set(bands)):
            raise ValueError(f"CAE config decoder_bands={bands!r}: at most 8 ascending positive steps")
        object.__setattr__(self, "decoder_bands", bands)
        # configs come from weights files: bound them before anything is allocated
        limits = {"in_channels": 4, "latent": 4096, "stages": 6, "kernel": 11}
        for name, top in limits.items():
            value = getattr(self, name)
            if not _is_count(value, top):
                raise ValueError(f"CAE config {name}={value!r} outside 1..{top}")
        for name in ("hidden", "decoder_hidden"):
            hidden = getattr(self, name)
            if isinstance(hidden, list):  # JSON gives a list
                hidden = tuple(hidden)
                object.__setattr__(self, name, hidden)
            if hidden is None and name == "decoder_hidden":
                continue
            if isinstance(hidden, tuple):
                if len(hidden) != self.stages - 1 or not all(_is_count(w, 1024) for w in hidden):
                    raise ValueError(
                        f"CAE config {name}={hidden!r}: {self.stages - 1} widths in 1..1024, one per stage"
                    )
            elif not _is_count(hidden, 1024):
                raise ValueError(f"CAE config {name}={hidden!r} outside 1..1024")

    def _chain(self, hidden: int | tuple[int, ...]) -> tuple[int, ...]:
        per_stage = hidden if isinstance(hidden, tuple) else (hidden,) * (self.stages - 1)
        return (self.in_channels, *per_stage, self.latent)

    @property
    def widths(self) -> tuple[int, ...]:
        """The encoder's channels from the input to the latent: in_channels, the hidden widths, latent."""
        return self._chain(self.hidden)

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        """The decoder's channels, listed the same way (from the image side to the latent)."""
        return self._chain(self.hidden if self.decoder_hidden is None else self.decoder_hidden)

    @property
    def stride(self) -> int:
        """How many input pixels one latent sample covers along each axis."""
        return 2**self.stages


def _is_count(value: object, top: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top
