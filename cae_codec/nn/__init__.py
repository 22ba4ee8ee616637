"""Building blocks shared by the networks of every codec (GDN layers, rate models) and the
architecture registry that weights files name their network by."""

from cae_codec.nn.registry import ARCHITECTURES, build_network, register_architecture

__all__ = ["ARCHITECTURES", "build_network", "register_architecture"]
